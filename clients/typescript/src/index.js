// A typed Backroom client: openapi-fetch over the types generated from /openapi.json (src/schema.d.ts).
import createClient from "openapi-fetch";

/**
 * A client of one Backroom API with a bearer token.
 * @param {{ baseUrl: string, token: string }} options
 */
export function createBackroomClient({ baseUrl, token }) {
  return createClient({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}
