"""STAND-IN for ``cupy.cuda.runtime`` (tests only): the CUDA runtime calls minivgg makes."""
from standins import device as _device

CUDARuntimeError = _device.CUDARuntimeError
streamCaptureModeGlobal, streamCaptureModeThreadLocal, streamCaptureModeRelaxed = 0, 1, 2
is_hip = False


def getDeviceCount():
    count = _device.device_count()
    if count == 0:
        raise CUDARuntimeError(100, "cudaErrorNoDevice: no CUDA-capable device is detected")
    return count


def getDevice():
    return _device.STATE.device


def setDevice(device):
    _device.check_device(device)
    _device.STATE.device = device


def deviceSynchronize():
    _device.synchronize_device()


def getDeviceProperties(device):
    _device.check_device(device)
    return {"name": b"NVIDIA H100 80GB HBM3 (stand-in)", "totalGlobalMem": 80 * 2 ** 30,
            "multiProcessorCount": 132, "major": 9, "minor": 0}


def runtimeGetVersion():
    return 13000


def driverGetVersion():
    return 13000


def memGetInfo():
    used = _device.DEFAULT_POOL.total_bytes()
    return 80 * 2 ** 30 - used, 80 * 2 ** 30
