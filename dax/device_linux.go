//go:build linux

package dax

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"kvresp/slab"
)

// defaultDevDAXAlign is a device-DAX's alignment when sysfs does not say (kernels before 5.10
// name it only on the region): the usual one, a PMD page.
const defaultDevDAXAlign = 2 << 20

// Open maps the file or device-DAX o.Path. See the package comment and Options.
func Open(o Options) (*Device, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var st unix.Stat_t
	err := unix.Stat(o.Path, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR:
		return openDevDAX(o, st)
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG:
		return openFile(o, st.Size, false)
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK:
		return nil, fmt.Errorf("dax: %s is a block device: give the DAX tier a file on a filesystem mounted -o dax, or a device-DAX (/dev/daxX.Y); a block device belongs to the NVMe tier (rawblock-path)", o.Path)
	case err == nil:
		return nil, fmt.Errorf("dax: %s is neither a regular file nor a device-DAX character device", o.Path)
	case errors.Is(err, unix.ENOENT) && o.Size > 0:
		return openFile(o, 0, true)
	case errors.Is(err, unix.ENOENT) && !o.ReadOnly:
		return nil, fmt.Errorf("dax: %s does not exist; set a size (dax-size) to create it", o.Path)
	}
	return nil, fmt.Errorf("dax: %w", err)
}

// openFile maps a regular file: with MAP_SYNC when its filesystem is DAX, else plainly.
func openFile(o Options, cur int64, create bool) (*Device, error) {
	flags := unix.O_RDWR | unix.O_CLOEXEC
	switch {
	case o.ReadOnly:
		flags = unix.O_RDONLY | unix.O_CLOEXEC
	case create:
		flags |= unix.O_CREAT | unix.O_EXCL
	}
	fd, err := unix.Open(o.Path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dax: cannot open %s: %w", o.Path, err)
	}
	fail := func(err error) (*Device, error) {
		_ = unix.Close(fd)
		if create {
			_ = unix.Unlink(o.Path)
		}
		return nil, err
	}
	size := cur
	switch {
	case o.Size == 0 && cur < BlockSize:
		return fail(fmt.Errorf("dax: %s holds no whole %d-byte block; set a size (dax-size)", o.Path, BlockSize))
	case o.Size != 0 && cur > o.Size:
		return fail(fmt.Errorf("dax: %s is %d bytes, larger than the size asked (%d); set dax-size to %d, or to 0 to use the file's size (kvresp does not shrink it)", o.Path, cur, o.Size, cur))
	case o.Size > cur:
		if err := allocate(fd, o, cur); err != nil {
			return fail(err)
		}
		size = o.Size
		if !create {
			o.Logger.Info("dax: grew device file", "path", o.Path, "from", cur, "to", o.Size)
		}
	}
	size &^= BlockSize - 1
	prot := unix.PROT_READ | unix.PROT_WRITE
	if o.ReadOnly {
		prot = unix.PROT_READ
	}
	mem, mapSync, err := mapShared(fd, size, prot)
	if err != nil {
		return fail(fmt.Errorf("dax: cannot map %s (%d bytes): %w", o.Path, size, err))
	}
	dp := deviceParams{
		path: o.Path, mode: ModeFile, mapSync: mapSync, lines: mapSync || o.forceLines, readOnly: o.ReadOnly,
		align: int64(os.Getpagesize()), mem: mem, p: newCPUPersister(mem), log: o.Logger,
		release: func() error { return errors.Join(unix.Munmap(mem), unix.Close(fd)) },
	}
	if mapSync {
		dp.mode = ModeFSDAX
	}
	d := newDevice(dp)
	d.logOpen(create)
	if !mapSync && !o.ReadOnly {
		o.Logger.Warn("dax: the file is not on a DAX filesystem (MAP_SYNC refused): it works, but values are durable only after msync at the log's sync points, and reads and writes go through the page cache; mount the filesystem -o dax for persistent memory",
			"path", o.Path)
	}
	return d, nil
}

// allocate sizes a file to o.Size with its blocks allocated, and makes its existence and size
// durable (fsync of the file and of its directory).
func allocate(fd int, o Options, cur int64) error {
	err := unix.Fallocate(fd, 0, cur, o.Size-cur)
	if errors.Is(err, unix.EOPNOTSUPP) {
		o.Logger.Warn("dax: the filesystem cannot preallocate; the file is sparse, and a write into a hole when the filesystem is full will kill the process (SIGBUS)", "path", o.Path)
		err = unix.Ftruncate(fd, o.Size)
	}
	if err != nil {
		return fmt.Errorf("dax: cannot size %s to %d bytes: %w", o.Path, o.Size, err)
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("dax: cannot sync %s: %w", o.Path, err)
	}
	dir, err := unix.Open(filepath.Dir(o.Path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dax: cannot open the directory of %s: %w", o.Path, err)
	}
	defer unix.Close(dir)
	if err := unix.Fsync(dir); err != nil {
		return fmt.Errorf("dax: cannot sync the directory of %s: %w", o.Path, err)
	}
	return nil
}

// mapShared maps n bytes of fd shared, with MAP_SYNC when the kernel takes it for this file.
// MAP_SYNC is refused with EOPNOTSUPP where the file is not DAX, and MAP_SHARED_VALIDATE with
// EINVAL by kernels before 4.15: either way the plain mapping is what remains.
func mapShared(fd int, n int64, prot int) ([]byte, bool, error) {
	if mapSyncFlags != 0 {
		mem, err := unix.Mmap(fd, 0, int(n), prot, mapSyncFlags)
		if err == nil {
			return mem, true, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
			return nil, false, err
		}
	}
	mem, err := unix.Mmap(fd, 0, int(n), prot, unix.MAP_SHARED)
	return mem, false, err
}

// openDevDAX maps a device-DAX character device whole: its size and alignment come from sysfs,
// and the kernel maps it only at addresses, offsets and lengths aligned to that alignment.
func openDevDAX(o Options, st unix.Stat_t) (*Device, error) {
	sys, err := devDAXSysfs(o.Path, uint64(st.Rdev)) // uint32 on some architectures
	if err != nil {
		return nil, err
	}
	size, err := readSysfsSize(filepath.Join(sys, "size"))
	if err != nil {
		return nil, fmt.Errorf("dax: cannot read the size of %s: %w", o.Path, err)
	}
	align, err := readSysfsSize(filepath.Join(sys, "align"))
	if err != nil {
		// Before Linux 5.10 the alignment is the region's.
		if align, err = readSysfsSize(filepath.Join(sys, "..", "dax_region", "align")); err != nil {
			align = defaultDevDAXAlign
			o.Logger.Warn("dax: sysfs names no alignment for the device; assuming 2 MiB", "path", o.Path, "sysfs", sys)
		}
	}
	if align < BlockSize || align&(align-1) != 0 {
		return nil, fmt.Errorf("dax: %s reports an alignment of %d bytes, not a power of two of at least %d", o.Path, align, BlockSize)
	}
	switch {
	case o.Size > size:
		return nil, fmt.Errorf("dax: size %d is larger than the %d bytes of %s; lower dax-size or set it to 0", o.Size, size, o.Path)
	case o.Size > 0 && o.Size%align != 0:
		return nil, fmt.Errorf("dax: size %d is not a multiple of the %d-byte alignment of %s", o.Size, align, o.Path)
	case o.Size > 0:
		size = o.Size
	}
	size -= size % align
	if size == 0 {
		return nil, fmt.Errorf("dax: %s holds no whole %d-byte aligned unit", o.Path, align)
	}
	flags, prot := unix.O_RDWR|unix.O_CLOEXEC, unix.PROT_READ|unix.PROT_WRITE
	if o.ReadOnly {
		flags, prot = unix.O_RDONLY|unix.O_CLOEXEC, unix.PROT_READ
	}
	fd, err := unix.Open(o.Path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("dax: cannot open %s: %w", o.Path, err)
	}
	// A device-DAX has no filesystem metadata to sync on a fault, so MAP_SYNC changes nothing
	// there; it is asked for anyway so that Stats says what the kernel granted.
	mem, mapSync, err := mapShared(fd, size, prot)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dax: cannot map %s (%d bytes, alignment %d): %w", o.Path, size, align, err)
	}
	d := newDevice(deviceParams{
		path: o.Path, mode: ModeDevDAX, mapSync: mapSync, lines: true, readOnly: o.ReadOnly,
		align: align, mem: mem, p: newCPUPersister(mem), log: o.Logger,
		release: func() error { return errors.Join(unix.Munmap(mem), unix.Close(fd)) },
	})
	d.logOpen(false)
	return d, nil
}

// devDAXSysfs returns the sysfs directory of the character device rdev at path: the device's
// own (/sys/dev/char/MAJ:MIN), else /sys/bus/dax/devices/<name>. It refuses a character device
// that is not a device-DAX.
func devDAXSysfs(path string, rdev uint64) (string, error) {
	dirs := []string{
		fmt.Sprintf("/sys/dev/char/%d:%d", unix.Major(rdev), unix.Minor(rdev)),
		filepath.Join("/sys/bus/dax/devices", filepath.Base(path)),
	}
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "size")); err != nil {
			continue
		}
		sub, err := filepath.EvalSymlinks(filepath.Join(dir, "subsystem"))
		if err == nil && filepath.Base(sub) != "dax" {
			return "", fmt.Errorf("dax: %s is a character device of subsystem %s, not a device-DAX (/dev/daxX.Y)", path, filepath.Base(sub))
		}
		return dir, nil
	}
	return "", fmt.Errorf("dax: %s is a character device that sysfs does not know as a device-DAX (%s)", path, strings.Join(dirs, ", "))
}

// IsDevDAX reports whether path is a device-DAX character device (/dev/daxX.Y), as opposed to
// a file or another character device (such as an NVMe namespace's /dev/ngXnY).
func IsDevDAX(path string) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	sys, err := devDAXSysfs(path, uint64(st.Rdev))
	return err == nil && sys != ""
}

func readSysfsSize(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseSysfsSize(string(b))
}

// msyncRange msyncs the pages holding b, a part of the mapping mem (MS_SYNC: it returns once
// they are written back).
func msyncRange(mem, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	off := slab.Addr(b) - slab.Addr(mem)
	start := off &^ uintptr(os.Getpagesize()-1)
	return unix.Msync(mem[start:off+uintptr(len(b))], unix.MS_SYNC)
}

func (d *Device) logOpen(created bool) {
	d.log.Info("dax: opened device", "path", d.path, "mode", d.mode.String(), "map_sync", d.mapSync,
		"flush", d.Stats().Flusher, "size", d.size, "align", d.align, "read_only", d.readOnly, "created", created)
}
