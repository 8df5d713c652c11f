import type { Client } from "openapi-fetch";
import type { paths } from "./schema";

export type { paths, components } from "./schema";

/** A client of one Backroom API with a bearer token; every path, body and answer typed. */
export declare function createBackroomClient(options: { baseUrl: string; token: string }): Client<paths>;
