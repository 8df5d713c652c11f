"""How the chaos bench counts: reruns after a loss apart from doubles, stuck before lost, dead bystanders."""

from __future__ import annotations

from pathlib import Path

from bench._chaos_ledger import Counts, Line, Loss, State, count, judge, pending, read_ledger

CUT = Loss(frozenset({10}), 100.0)  # process 10 lost at t=100


def lines(*items: tuple[str, int, float]) -> list[Line]:
    return [Line(kind, "job", pid, at) for kind, pid, at in items]


def test_a_job_running_when_its_worker_was_killed_and_run_again_is_a_rerun_not_a_double() -> None:
    assert judge(lines(("start", 10, 99.0), ("start", 20, 105.0), ("done", 20, 106.0)), [CUT]) == (1, False, True)


def test_a_cut_off_worker_finishing_what_it_ran_is_excused_once() -> None:
    ran = lines(("start", 10, 99.0), ("done", 10, 101.0), ("start", 20, 105.0), ("done", 20, 106.0))
    assert judge(ran, [CUT]) == (2, False, True)


def test_a_job_started_after_its_worker_was_cut_off_and_run_elsewhere_too_is_a_double() -> None:
    ran = lines(("start", 10, 101.0), ("done", 10, 104.0), ("start", 20, 105.0), ("done", 20, 106.0))
    assert judge(ran, [CUT]) == (2, True, False)


def test_a_job_finished_before_the_loss_and_run_again_is_a_double() -> None:
    ran = lines(("start", 10, 90.0), ("done", 10, 91.0), ("start", 20, 105.0), ("done", 20, 106.0))
    assert judge(ran, [CUT]) == (2, True, False)


def test_retries_are_not_doubles() -> None:
    ran = lines(("start", 20, 1.0), ("fail", 20, 2.0), ("start", 20, 3.0), ("done", 20, 4.0))
    assert judge(ran, []) == (1, False, False)


def test_count_sorts_jobs_into_stuck_lost_dead_and_poison(tmp_path: Path) -> None:
    (tmp_path / "10.log").write_text(
        "start ok 10 1.0\ndone ok 10 2.0\nstart held 10 1.0\ndone held 10 2.0\n"
        "start poison 10 3.0\nstart cut 10 4.0\ndone cut-short\n"
        "start unacked 10 5.0\ndone unacked 10 6.0\n"
    )
    jobs = {tag: tag for tag in ("ok", "held", "queued", "gone", "dead", "poison", "cut", "stranded", "unacked")}
    states = {
        "ok": State("succeeded", False),
        "held": State("succeeded", True),
        "queued": State("queued", True),
        "gone": State(None, False),
        "dead": State("dead", False),
        "poison": State("dead", False),
        "cut": State("succeeded", False),
        "stranded": State("delayed", False),
        "unacked": State("running", False),
    }
    counts = count(Counts("t"), jobs, states, read_ledger(tmp_path), [], {"poison"})
    assert (counts.jobs, counts.stuck, counts.lost, counts.bystanders_dead, counts.doubled) == (9, 3, 3, 1, 0)
    assert sorted(tag.split("(")[0] for tag in counts.details["lost"]) == ["cut", "gone", "stranded"]
    assert sorted(tag.split("(")[0] for tag in counts.details["stuck"]) == ["held", "queued", "unacked"]
    assert pending(states) == 4  # held, queued, stranded (its record reads delayed) and unacked
