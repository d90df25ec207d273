import { invalidPageToken } from "./shared-errors";

/**
 * Opaque page tokens: where the next page starts, bound to the request that asked, so that a
 * token is not taken for another listing's.
 */
export function encodePageToken(after: string, request: object): string {
  return Buffer.from(JSON.stringify({ after, filter: request })).toString("base64url");
}

/** Where the page of `token` starts; "" for the first page. INVALID_ARGUMENT for a foreign token. */
export function decodePageToken(token: string, request: object): string {
  if (token === "") return "";
  try {
    const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { after?: unknown; filter?: unknown };
    if (typeof decoded.after === "string" && JSON.stringify(decoded.filter) === JSON.stringify(request)) return decoded.after;
  } catch {
    // fall through
  }
  throw invalidPageToken();
}
