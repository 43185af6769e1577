"""The gRPC client of the CSI API, generated from Protos/csi.proto with grpcio-tools.

Generated once per process, the first time it is asked for, so the client shares no code with
the driver.
"""

import importlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "Protos"
_modules = None


def csi_stubs():
    """Returns the modules (csi_pb2, csi_pb2_grpc), generating them on first use."""
    global _modules
    if _modules is None:
        from grpc_tools import protoc
        import grpc_tools

        out = tempfile.mkdtemp(prefix="csi-stubs-")
        include = Path(grpc_tools.__file__).parent / "_proto"
        code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}",
                            f"--grpc_python_out={out}", str(PROTO_DIR / "csi.proto")])
        if code != 0:
            raise RuntimeError("protoc could not generate Python stubs from Protos/csi.proto")
        sys.path.insert(0, out)
        _modules = (importlib.import_module("csi_pb2"), importlib.import_module("csi_pb2_grpc"))
    return _modules
