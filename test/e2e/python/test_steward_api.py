"""Steward's API from Python, with Debian's python3-grpcio and stubs protoc makes from our protos.

Usage: test_steward_api.py PROTO_DIR ADDRESS
Generates the stubs into a temporary folder, then runs the tests against the server at ADDRESS.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc

PROTO_DIR, ADDRESS = sys.argv[1], sys.argv[2]


def generate_stubs(out):
    protos = []
    for root, _, files in os.walk(PROTO_DIR):
        if os.path.relpath(root, PROTO_DIR).startswith("grpc"):
            continue  # grpcio ships its own health and reflection stubs
        protos += [os.path.relpath(os.path.join(root, f), PROTO_DIR) for f in files if f.endswith(".proto")]
    subprocess.run(
        ["protoc", f"-I{PROTO_DIR}", "-I/usr/include", f"--python_out={out}", f"--grpc_python_out={out}",
         "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin", *sorted(protos)],
        check=True,
    )
    sys.path.insert(0, out)
    import google  # our google.rpc stubs join the installed google package
    if isinstance(google.__path__, list):
        google.__path__.append(os.path.join(out, "google"))


STUBS = tempfile.mkdtemp(prefix="steward-py-")
# The stubs are read once imported: the folder goes when the suite ends, passed or not.
atexit.register(shutil.rmtree, STUBS, ignore_errors=True)
generate_stubs(STUBS)

from google.longrunning import operations_pb2, operations_pb2_grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from steward.v1 import operation_pb2  # noqa: E402
from steward.v1 import host_pb2, host_service_pb2, host_service_pb2_grpc  # noqa: E402
from steward.v1 import vm_pb2, vm_service_pb2, vm_service_pb2_grpc  # noqa: E402
from steward.v1 import event_service_pb2, event_service_pb2_grpc  # noqa: E402
from steward.v1 import volume_pb2, volume_service_pb2, volume_service_pb2_grpc  # noqa: E402
from steward.v1 import backup_service_pb2, backup_service_pb2_grpc  # noqa: E402


def status_details(error):
    """The google.rpc.Status that Steward sends in grpc-status-details-bin, and its ErrorInfo."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
    return status, info


class StewardFromPython(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(ADDRESS)
        self.host = host_service_pb2_grpc.HostServiceStub(self.channel)
        self.vms = vm_service_pb2_grpc.VmServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def test_get_host_info(self):
        reply, call = self.host.GetHostInfo.with_call(
            host_service_pb2.GetHostInfoRequest(), metadata=[("x-request-id", "from-python")], timeout=10)
        self.assertEqual(reply.host.api_version, "v1")
        self.assertEqual(reply.host.hypervisor, host_pb2.HYPERVISOR_KIND_SIM)
        self.assertEqual(reply.host.caller, "dom0")
        self.assertEqual(len(reply.host.host_id), 36)
        self.assertIn("steward.v1.HostService/GetHostInfo", reply.host.api_features)
        self.assertIn(("x-request-id", "from-python"), call.initial_metadata())

    def test_list_vm_classes(self):
        reply = self.host.ListVmClasses(host_service_pb2.ListVmClassesRequest(), timeout=10)
        self.assertEqual([c.name for c in reply.classes], ["AdminVM", "TemplateVM", "AppVM", "StandaloneVM", "DispVM"])
        app_vm = reply.classes[2]
        self.assertEqual(app_vm.klass, vm_pb2.VM_CLASS_APP_VM)
        self.assertEqual(app_vm.template_class, vm_pb2.VM_CLASS_TEMPLATE_VM)

    def test_error_details_decode(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.vms.GetVm(vm_service_pb2.GetVmRequest(vm="nosuchvm"), timeout=10)
        error = raised.exception
        self.assertEqual(error.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(error.details(), "no VM named nosuchvm")
        status, info = status_details(error)
        self.assertEqual(status.code, grpc.StatusCode.NOT_FOUND.value[0])
        self.assertEqual(info.reason, "VM_NOT_FOUND")
        self.assertEqual(info.domain, "steward.v1")
        self.assertEqual(info.metadata["vm"], "nosuchvm")

    def test_create_list_and_remove_a_vm(self):
        operation = self.vms.CreateVm(vm_service_pb2.CreateVmRequest(
            name="py-template", klass=vm_pb2.VM_CLASS_TEMPLATE_VM, label="black"), timeout=10)
        self.assertTrue(operation.done)
        response = vm_service_pb2.CreateVmResponse()
        self.assertTrue(operation.response.Unpack(response))
        created = response.vm
        self.assertEqual(created.name, "py-template")
        self.assertIn("created-by-dom0", created.tags)
        listed = self.vms.ListVms(vm_service_pb2.ListVmsRequest(klass=vm_pb2.VM_CLASS_TEMPLATE_VM), timeout=10)
        self.assertEqual([vm.name for vm in listed.vms], ["py-template"])
        self.vms.RemoveVm(vm_service_pb2.RemoveVmRequest(vm="uuid:" + created.uuid), timeout=10)
        with self.assertRaises(grpc.RpcError) as raised:
            self.vms.GetVm(vm_service_pb2.GetVmRequest(vm="py-template"), timeout=10)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_long_work_is_an_operation_a_generic_client_follows(self):
        self.vms.CreateVm(vm_service_pb2.CreateVmRequest(name="py-source", klass=vm_pb2.VM_CLASS_STANDALONE_VM, label="red"), timeout=10)
        started = self.vms.CloneVm(vm_service_pb2.CloneVmRequest(vm="py-source", new_name="py-copy"), timeout=10)
        self.assertTrue(started.name.startswith("operations/"))
        # google.longrunning's own stub, as any generic LRO client has it.
        operations = operations_pb2_grpc.OperationsStub(self.channel)
        done = operations.WaitOperation(operations_pb2.WaitOperationRequest(name=started.name), timeout=10)
        self.assertTrue(done.done)
        self.assertEqual(done.WhichOneof("result"), "response")
        response = vm_service_pb2.CloneVmResponse()
        self.assertTrue(done.response.Unpack(response))
        self.assertEqual(response.vm.name, "py-copy")
        metadata = operation_pb2.OperationMetadata()
        self.assertTrue(done.metadata.Unpack(metadata))
        self.assertEqual((metadata.kind, metadata.target, metadata.progress_unit), (operation_pb2.OPERATION_KIND_CLONE_VM, "py-source", operation_pb2.PROGRESS_UNIT_BYTES))
        self.assertEqual(metadata.progress_done, metadata.progress_total)
        listed = operations.ListOperations(operations_pb2.ListOperationsRequest(name="operations", filter="kind=clone-vm"), timeout=10)
        self.assertIn(started.name, [op.name for op in listed.operations])
        with self.assertRaises(grpc.RpcError) as raised:
            operations.GetOperation(operations_pb2.GetOperationRequest(name="operations/not-one"), timeout=10)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_not_implemented_names_the_rpc(self):
        with self.assertRaises(grpc.RpcError) as raised:
            backups = backup_service_pb2_grpc.BackupServiceStub(self.channel)
            backups.GetBackupProfile(backup_service_pb2.GetBackupProfileRequest(name="daily"), timeout=10)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        _, info = status_details(raised.exception)
        self.assertEqual(info.reason, "NOT_IMPLEMENTED")
        self.assertEqual(info.metadata["rpc"], "steward.v1.BackupService/GetBackupProfile")

    def test_follow_events_while_another_client_changes_things(self):
        import threading
        events = event_service_pb2_grpc.EventServiceStub(self.channel)
        stream = events.Events(event_service_pb2.EventsRequest(name_prefixes=["domain-", "connection-"]), timeout=30)
        seen, opened, finished = [], threading.Event(), threading.Event()

        def follow():
            try:
                for message in stream:
                    if message.WhichOneof("kind") != "event":
                        continue
                    seen.append((message.event.sequence, message.event.name, message.event.subject, dict(message.event.kwargs)))
                    if message.event.name == "connection-established":
                        opened.set()
                    if message.event.name == "domain-delete":
                        finished.set()
                        return
            except grpc.RpcError:
                finished.set()

        follower = threading.Thread(target=follow)
        follower.start()
        self.assertTrue(opened.wait(10))
        other = grpc.insecure_channel(ADDRESS)
        vms = vm_service_pb2_grpc.VmServiceStub(other)
        vms.CreateVm(vm_service_pb2.CreateVmRequest(name="py-followed", klass=vm_pb2.VM_CLASS_STANDALONE_VM, label="green"), timeout=10)
        vms.SetFeature(vm_service_pb2.SetFeatureRequest(vm="py-followed", name="gui", value="1"), timeout=10)
        vms.RemoveVm(vm_service_pb2.RemoveVmRequest(vm="py-followed"), timeout=10)
        self.assertTrue(finished.wait(10))
        stream.cancel()
        follower.join(10)
        other.close()
        names = [name for _, name, _, _ in seen]
        self.assertEqual(names, ["connection-established", "domain-add", "domain-tag-add:created-by-dom0",
                                 "domain-feature-set:gui", "domain-delete"])
        sequences = [sequence for sequence, _, _, _ in seen[1:]]
        self.assertEqual(sequences, sorted(sequences))
        self.assertEqual(seen[1][2:], ("py-followed", {"vm": "py-followed"}))

    def test_import_then_export_a_volume_round_trips_it_holes_included(self):
        import hashlib
        volumes = volume_service_pb2_grpc.VolumeServiceStub(self.channel)
        mib = 1024 * 1024
        content = bytearray(8 * mib)
        content[mib:mib + 300_000] = bytes((i * 7 + 1) % 251 + 1 for i in range(300_000))
        content[6 * mib:6 * mib + 4096] = b"steward!" * 512
        digest = hashlib.sha256(content).hexdigest()
        target = volume_pb2.VolumeRef(pool="default", vid="py/disk")
        volumes.CreateVolume(volume_service_pb2.CreateVolumeRequest(pool="default", vid="py/disk", size_bytes=mib), timeout=10)

        def requests():
            header = volume_service_pb2.ImportVolumeHeader(volume=target, size_bytes=len(content), format=volume_pb2.VOLUME_FORMAT_RAW, sha256=digest)
            yield volume_service_pb2.ImportVolumeRequest(header=header)
            for offset in range(0, len(content), mib):
                yield volume_service_pb2.ImportVolumeRequest(chunk=bytes(content[offset:offset + mib]))

        imported = volumes.ImportVolume(requests(), timeout=30)
        self.assertEqual((imported.bytes_received, imported.sha256, imported.volume.size_bytes), (len(content), digest, len(content)))

        rebuilt, sent, trailer = bytearray(len(content)), 0, None
        for message in volumes.ExportVolume(volume_service_pb2.ExportVolumeRequest(volume=target), timeout=30):
            kind = message.WhichOneof("kind")
            if kind == "chunk":
                rebuilt[message.chunk.offset:message.chunk.offset + len(message.chunk.data)] = message.chunk.data
                sent += len(message.chunk.data)
            elif kind == "trailer":
                trailer = message.trailer
        self.assertEqual(rebuilt, content)
        self.assertEqual(trailer.sha256, digest)
        # The holes came as holes: the chunks carried the data and little more.
        self.assertLess(sent, 2 * mib)
        self.assertEqual(trailer.bytes_sent, sent)

        def short():
            header = volume_service_pb2.ImportVolumeHeader(volume=target, size_bytes=len(content))
            yield volume_service_pb2.ImportVolumeRequest(header=header)
            yield volume_service_pb2.ImportVolumeRequest(chunk=bytes(mib))

        # A stream that ends early changes nothing.
        with self.assertRaises(grpc.RpcError) as raised:
            volumes.ImportVolume(short(), timeout=30)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, info = status_details(raised.exception)
        self.assertEqual(info.metadata["field"], "header.size_bytes")
        trailers = [m.trailer for m in volumes.ExportVolume(volume_service_pb2.ExportVolumeRequest(volume=target), timeout=30) if m.WhichOneof("kind") == "trailer"]
        self.assertEqual([t.sha256 for t in trailers], [digest])
        volumes.DeleteVolume(volume_service_pb2.DeleteVolumeRequest(pool="default", vid="py/disk"), timeout=10)

    def test_deadline_is_honoured(self):
        reply = self.host.GetHostInfo(host_service_pb2.GetHostInfoRequest(), timeout=0.5)
        self.assertTrue(reply.host.version)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
