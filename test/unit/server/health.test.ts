import { HealthStatus, ServingStatus } from "../../../src/server/health";

describe("HealthStatus", () => {
  it("is NOT_SERVING for the server and each service until told otherwise, as while starting", () => {
    const health = new HealthStatus(["steward.v1.VmService"]);
    expect(health.get("")).toBe(ServingStatus.NOT_SERVING);
    expect(health.get("steward.v1.VmService")).toBe(ServingStatus.NOT_SERVING);
    expect(health.get("other.Service")).toBeUndefined();
    health.setAll(ServingStatus.SERVING);
    expect(health.get("steward.v1.VmService")).toBe(ServingStatus.SERVING);
  });
});
