"""Mount points under a directory, and their lazy release (always by path, innermost first)."""

import subprocess


def mounts_under(path):
    """Mount points at or below `path`, from this process's mount table."""
    prefix = str(path)
    with open("/proc/self/mountinfo") as table:
        points = [line.split()[4] for line in table]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]


def unmount_all_under(path):
    """Lazily unmounts everything at or below `path`, innermost first."""
    for point in sorted(set(mounts_under(path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, stderr=subprocess.DEVNULL)
