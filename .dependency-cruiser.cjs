/**
 * The dependency rules of Steward's layout (README, "Working on Steward"): ports and adapters,
 * one direction, transport -> api -> core -> ports <- adapters; inside core, areas meet only at
 * vms/ and events/. Type-only imports count as imports. `npm test` runs this; a violation
 * fails CI.
 */
const BASE_AREAS = "model|shared|events|vms";

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "No import circles: each module can be read after the ones it imports.",
      from: {},
      to: { circular: true },
    },
    {
      name: "core-imports-core-and-ports",
      severity: "error",
      comment: "The core imports only the core and the ports: no gRPC, SQL, files, processes or sockets. ipaddr.js only parses addresses.",
      from: { path: "^src/core/" },
      to: { pathNot: ["^src/core/", "^src/ports/", "^node_modules/ipaddr\\.js/"] },
    },
    {
      name: "core-model-imports-nothing",
      severity: "error",
      comment: "core/model holds the domain's words, and depends on nothing else.",
      from: { path: "^src/core/model/" },
      to: { pathNot: "^src/core/model/" },
    },
    {
      name: "core-shared-imports-model-and-errors",
      severity: "error",
      from: { path: "^src/core/shared/" },
      to: { path: "^src/core/", pathNot: ["^src/core/(shared|model)/", "^src/core/errors\\.ts$"] },
    },
    {
      name: "core-events-imports-shared-and-model",
      severity: "error",
      comment: "events/ is where areas meet: it knows none of them.",
      from: { path: "^src/core/events/" },
      to: { path: "^src/core/", pathNot: ["^src/core/(events|shared|model)/", "^src/core/errors\\.ts$"] },
    },
    {
      name: "core-vms-imports-no-other-area",
      severity: "error",
      comment: "vms/ is where areas join a VM's life (VmParticipant): it knows none of them.",
      from: { path: "^src/core/vms/" },
      to: { path: "^src/core/", pathNot: ["^src/core/(vms|events|shared|model)/", "^src/core/errors\\.ts$"] },
    },
    {
      name: "core-areas-do-not-import-siblings",
      severity: "error",
      comment: "A core area (lifecycle, host, storage, network…) never imports a sibling: they meet through vms/ and events/.",
      from: { path: "^src/core/([^/]+)/", pathNot: `^src/core/(${BASE_AREAS})/` },
      to: { path: "^src/core/[^/]+/", pathNot: [`^src/core/($1|${BASE_AREAS})/`] },
    },
    {
      name: "ports-import-model-and-errors",
      severity: "error",
      comment: "A port speaks the domain's words (core/model) and its errors, nothing else.",
      from: { path: "^src/ports/" },
      to: { pathNot: ["^src/ports/", "^src/core/model/", "^src/core/errors\\.ts$"] },
    },
    {
      name: "adapters-import-ports-and-model",
      severity: "error",
      comment: "An adapter implements a port: it knows the port, the domain's words and the errors, not the core's workings, the API or the server.",
      from: { path: "^src/adapters/" },
      to: { path: "^src/", pathNot: ["^src/adapters/", "^src/ports/", "^src/core/model/", "^src/core/errors\\.ts$"] },
    },
    {
      name: "adapter-folders-are-apart",
      severity: "error",
      comment:
        "An adapter folder never imports another: only the driver registries (adapters/<kind>/*.ts) and the composition root name implementations. Drivers of one kind may share helpers in adapters/<kind>/shared/, which names no driver. The QMP client is shared by every adapter that drives a QEMU (block exports, devices).",
      from: { path: "^src/adapters/([^/]+)/([^/]+)/" },
      to: { path: "^src/adapters/", pathNot: ["^src/adapters/$1/$2/", "^src/adapters/$1/shared/", "^src/adapters/hypervisor/qemu/qmp/"] },
    },
    {
      name: "registries-name-their-own-kind",
      severity: "error",
      comment: "A driver registry names the drivers of its kind only.",
      from: { path: "^src/adapters/([^/]+)/[^/]+\\.ts$" },
      to: { path: "^src/adapters/", pathNot: "^src/adapters/$1/" },
    },
    {
      name: "only-the-composition-root-names-adapters",
      severity: "error",
      comment: "Implementations are chosen in app/ (and main.ts, which names their start-up errors), nowhere else.",
      from: { path: "^src/", pathNot: ["^src/adapters/", "^src/app/", "^src/main\\.ts$"] },
      to: { path: "^src/adapters/" },
    },
    {
      name: "api-imports-no-app",
      severity: "error",
      comment: "The API maps requests to the core; the composition root builds it, not the other way round.",
      from: { path: "^src/api/" },
      to: { path: "^src/app/" },
    },
    {
      name: "server-is-transport-only",
      severity: "error",
      comment: "server/ is grpc-js: it knows the core's errors (to make statuses) and the call context, not the API or the core's workings.",
      from: { path: "^src/server/" },
      to: { path: "^src/", pathNot: ["^src/server/", "^src/core/errors\\.ts$", "^src/core/shared/call-context\\.ts$", "^src/config\\.ts$"] },
    },
  ],
  options: {
    // Generated code and packages are where imports end, not what is checked: an import of gen/
    // from the core still counts (and is refused).
    doNotFollow: { path: ["node_modules", "^gen/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
