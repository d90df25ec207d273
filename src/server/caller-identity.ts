import type * as grpc from "@grpc/grpc-js";

/** The caller of every call that does not come with a client certificate: the host's own admin. */
export const LOCAL_CALLER = "dom0";

type CallWithAuth = Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">;

/**
 * Who is calling. With mTLS it is the client certificate's subject common name (or its first
 * DNS name when it has no CN); over loopback and the unix socket, which only the host's own
 * users can reach, it is dom0, as calls from the AdminVM are in Qubes.
 */
export function callerOf(call: CallWithAuth): string {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (!certificate || Object.keys(certificate).length === 0) return LOCAL_CALLER;
  const commonName = certificate.subject?.CN;
  if (commonName) return Array.isArray(commonName) ? commonName[0] : commonName;
  const dnsName = /DNS:([^,\s]+)/.exec(certificate.subjectaltname ?? "");
  return dnsName ? dnsName[1] : LOCAL_CALLER;
}
