import type { Signer } from "../../ports/signer";
import { invalidPageToken, negativePageSize } from "./shared-errors";

/**
 * Page tokens that cannot be forged: where the next page starts, bound to the listing that
 * asked (its filters), and signed (a MAC keyed with the host's secret), so that a token is
 * neither made up nor taken for another listing's. A token is the base64url of its text and of
 * its signature.
 */
export class PageTokens {
  constructor(private readonly signer: Signer) {}

  /** A token for the page that starts after `after`, in the listing `request` describes. */
  encode(after: string, request: object): string {
    const payload = Buffer.from(JSON.stringify({ after, filter: request }));
    return `${payload.toString("base64url")}.${this.sign(payload).toString("base64url")}`;
  }

  /** Where the page of `token` starts; "" for the first page. INVALID_ARGUMENT for any other token. */
  decode(token: string, request: object): string {
    if (token === "") return "";
    const [text, signature, ...rest] = token.split(".");
    if (text === undefined || signature === undefined || rest.length > 0) throw invalidPageToken();
    const payload = Buffer.from(text, "base64url");
    const given = Buffer.from(signature, "base64url");
    if (!sameBytes(given, this.sign(payload))) throw invalidPageToken();
    try {
      const decoded = JSON.parse(payload.toString("utf8")) as { after?: unknown; filter?: unknown };
      if (typeof decoded.after === "string" && JSON.stringify(decoded.filter) === JSON.stringify(request)) return decoded.after;
    } catch {
      // fall through
    }
    throw invalidPageToken();
  }

  private sign(payload: Buffer): Buffer {
    return Buffer.from(this.signer.sign(Buffer.concat([PURPOSE, payload])));
  }
}

/** What page tokens' signatures are for, so that no other signed thing passes for one. */
const PURPOSE = Buffer.from("page-token\0");

/** Whether two byte strings are equal, in a time that does not tell where they differ. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/** What a listing's request says of its page. */
export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/**
 * The page of `items` (sorted by `keyOf`, whose keys are unique) that a request asks for: at most its page_size (default 100, at most
 * 1000; negative is INVALID_ARGUMENT), after where its token says, with the token of the next.
 */
export function pageOf<T>(items: readonly T[], keyOf: (item: T) => string, request: PageRequest, tokens: PageTokens, listing: object): { items: T[]; nextPageToken: string } {
  const pageSize = checkedPageSize(request.pageSize);
  const after = tokens.decode(request.pageToken, listing);
  const start = after === "" ? 0 : items.findIndex((item) => keyOf(item) > after);
  const from = start === -1 ? items.length : start;
  const page = items.slice(from, from + pageSize);
  const more = from + pageSize < items.length;
  return { items: page, nextPageToken: more ? tokens.encode(keyOf(page[page.length - 1]), listing) : "" };
}

/** A request's page_size as a count: 0 is the default, past the maximum is lowered to it. */
export function checkedPageSize(pageSize: number, defaultSize = DEFAULT_PAGE_SIZE): number {
  if (pageSize < 0) throw negativePageSize();
  return Math.min(pageSize || defaultSize, MAX_PAGE_SIZE);
}

