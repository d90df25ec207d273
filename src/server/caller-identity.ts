import type * as grpc from "@grpc/grpc-js";

/** The caller of every call that does not come with a client certificate: the host's own admin. */
export const LOCAL_CALLER = "dom0";

/**
 * Certificate identities live in a namespace of their own, so that no certificate can name the
 * local admin: a CN of "dom0" is the caller "cert:dom0", never dom0.
 */
export const CERTIFICATE_CALLER_PREFIX = "cert:";

type CallWithAuth = Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">;

/**
 * Who is calling. With mTLS it is the client certificate's subject common name (or its first
 * DNS name when it has no CN, or its SHA-256 fingerprint when it has neither), as
 * `cert:<identity>`; over the unix socket, which only the host's own users can reach, it is dom0,
 * as calls from the AdminVM are in Qubes. (A listener other machines can reach requires mTLS.)
 */
export function callerOf(call: CallWithAuth): string {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (!certificate || Object.keys(certificate).length === 0) return LOCAL_CALLER;
  const commonName = certificate.subject?.CN;
  if (commonName) return CERTIFICATE_CALLER_PREFIX + (Array.isArray(commonName) ? commonName[0] : commonName);
  const dnsName = /DNS:([^,\s]+)/.exec(certificate.subjectaltname ?? "");
  if (dnsName) return CERTIFICATE_CALLER_PREFIX + dnsName[1];
  return `${CERTIFICATE_CALLER_PREFIX}sha256:${certificate.fingerprint256}`;
}
