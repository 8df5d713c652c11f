// Enqueue a ping through the typed client and read its record: `node examples/enqueue.mjs`
// with BACKROOM_URL and BACKROOM_TOKEN (scope `jobs`) set. Prints the final record as JSON.
import { createBackroomClient } from "../src/index.js";

const client = createBackroomClient({ baseUrl: process.env.BACKROOM_URL, token: process.env.BACKROOM_TOKEN });
const { data: accepted, error } = await client.POST("/v1/jobs/ping", { body: { message: "from typescript" } });
if (error) throw new Error(`enqueue refused: ${JSON.stringify(error)}`);
for (let i = 0; i < 300; i++) {
  const { data: record } = await client.GET("/v1/jobs/{job_id}", { params: { path: { job_id: accepted.job_id } } });
  if (record && ["succeeded", "failed", "dead"].includes(record.status)) {
    console.log(JSON.stringify(record));
    process.exit(0);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
throw new Error("the job never finished");
