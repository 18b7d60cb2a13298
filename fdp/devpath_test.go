package fdp

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeSys builds the parts of sysfs controllerPath reads.
func fakeSys(t *testing.T) string {
	t.Helper()
	sys := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		mk(filepath.Dir(p))
		if err := os.Symlink(filepath.Join(sys, target), filepath.Join(sys, p)); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(sys, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ng0n1: a private namespace of controller nvme0.
	mk("devices/pci0000:00/0000:00:04.0/nvme/nvme0")
	link("devices/pci0000:00/0000:00:04.0/nvme/nvme0", "class/nvme-generic/ng0n1/device")
	// ng1n1: a multipath head of subsystem 1 with controllers nvme2 (resetting) and nvme3 (live).
	mk("devices/virtual/nvme-subsystem/nvme-subsys1")
	for _, c := range []string{"nvme2", "nvme3"} {
		mk("devices/pci0000:00/" + c)
		link("devices/pci0000:00/"+c, "devices/virtual/nvme-subsystem/nvme-subsys1/"+c)
		mk("class/nvme/" + c)
	}
	mk("devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1")
	write("class/nvme/nvme2/state", "resetting\n")
	write("class/nvme/nvme3/state", "live\n")
	link("devices/virtual/nvme-subsystem/nvme-subsys1", "class/nvme-generic/ng1n1/device")
	return sys
}

func TestControllerPath(t *testing.T) {
	sys := fakeSys(t)
	for _, tc := range []struct {
		ng, want string
	}{
		{"/dev/ng0n1", "/dev/nvme0"},
		{"/dev/ng1n1", "/dev/nvme3"}, // the live controller of the subsystem
		{"/dev/ng4n2", "/dev/nvme4"}, // not in sysfs: the name decides
	} {
		got, err := controllerPath(sys, "/dev", tc.ng)
		if err != nil || got != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.ng, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/dev/nvme0n1", "/dev/nvme0", "/dev/sda", "ng0"} {
		if got, err := controllerPath(sys, "/dev", bad); err == nil {
			t.Errorf("%s: %s", bad, got)
		}
	}
}
