//go:build linux

package fdp

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"kvresp/internal/uring"
)

// needRing skips when this kernel (or sandbox) has no io_uring with 128-byte entries.
func needRing(t *testing.T) {
	t.Helper()
	r, err := uring.New(uring.Params{Entries: 2, SQE128: true, CQE32: true})
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	_ = r.Close()
}

// On a machine without NVMe the whole path up to the driver still runs: open, ring, command
// encoding and completion. /dev/null takes any URING_CMD and completes it with 0 (Linux 6.0 and
// later; before, the kernel answers EOPNOTSUPP).
func TestPassthruOnNonNVMe(t *testing.T) {
	needRing(t)
	_, err := OpenController("/dev/null")
	if err == nil || !strings.Contains(err.Error(), "not an NVMe controller") && !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Fatalf("OpenController(/dev/null): %v", err)
	}
	var st Status
	if errors.As(err, &st) {
		t.Fatalf("not a device status: %v", err)
	}
	// /dev/null has no NVME_IOCTL_ID.
	if _, err := OpenNamespace("/dev/null"); !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("OpenNamespace(/dev/null): %v, want ENOTTY", err)
	}
	if _, err := OpenNamespace("/nonexistent/ng0n1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenNamespace of a missing path: %v", err)
	}
	if _, err := Probe("/nonexistent/ng0n1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Probe of a missing path: %v", err)
	}
}

func TestPassthruExecChecksBuffer(t *testing.T) {
	needRing(t)
	p, err := openPassthru("/dev/null", false, NVME_URING_CMD_IO)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	buf, err := MapBuffer(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer UnmapBuffer(buf)
	if _, err := p.exec(Command{Opcode: OpRead, DataLen: 8192}, buf); err == nil {
		t.Fatal("a DataLen over the buffer was sent")
	}
	if _, err := p.exec(Command{Opcode: OpRead, DataLen: 512}, nil); err == nil {
		t.Fatal("a DataLen without a buffer was sent")
	}
	// A matching command reaches the kernel and completes (see TestPassthruOnNonNVMe).
	if res, err := p.exec(ReadCmd(1, 0, 8), buf); err != nil && !errors.Is(err, syscall.EOPNOTSUPP) || res != 0 {
		t.Fatalf("read on /dev/null: %d, %v", res, err)
	}
	// Many in a row: each reaps its own completion.
	for range 100 {
		if b, _, err := p.read(IdentifyCmd(CNSController, 0)); err != nil && !errors.Is(err, syscall.EOPNOTSUPP) || err == nil && len(b) != IdentifySize {
			t.Fatalf("read on /dev/null: %d bytes, %v", len(b), err)
		}
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.exec(ReadCmd(1, 0, 8), buf); err == nil {
		t.Fatal("exec after close")
	}
	if _, err := MapBuffer(0); err == nil {
		t.Fatal("MapBuffer(0)")
	}
}
