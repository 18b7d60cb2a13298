package fdp

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	ngName   = regexp.MustCompile(`^ng(\d+)n(\d+)$`)
	ctrlName = regexp.MustCompile(`^nvme\d+$`)
)

// ControllerPath returns the controller character device (/dev/nvmeX) that takes the admin
// commands for namespace character device ngPath (/dev/ngXnY): Identify through
// NVME_URING_CMD_ADMIN on the namespace device fails with ENOTTY.
//
// It follows /sys/class/nvme-generic/ngXnY/device: to the controller itself, or, for a
// multipath namespace head, to its subsystem, whose controllers are listed beside it (a live
// one is preferred). Without sysfs it falls back to the name: ngXnY belongs to nvmeX, which
// holds when each controller is its own subsystem.
func ControllerPath(ngPath string) (string, error) {
	return controllerPath("/sys", "/dev", ngPath)
}

func controllerPath(sys, dev, ngPath string) (string, error) {
	name := filepath.Base(ngPath)
	if p, err := filepath.EvalSymlinks(ngPath); err == nil {
		name = filepath.Base(p)
	}
	m := ngName.FindStringSubmatch(name)
	if m == nil {
		return "", fmt.Errorf("fdp: %s is not an NVMe namespace character device (/dev/ngXnY)", ngPath)
	}
	target, err := filepath.EvalSymlinks(filepath.Join(sys, "class", "nvme-generic", name, "device"))
	if err == nil {
		base := filepath.Base(target)
		switch {
		case ctrlName.MatchString(base):
			return filepath.Join(dev, base), nil
		case strings.HasPrefix(base, "nvme-subsys"):
			if c := subsysController(sys, target); c != "" {
				return filepath.Join(dev, c), nil
			}
		}
	}
	return filepath.Join(dev, "nvme"+m[1]), nil
}

// subsysController returns the name of a controller of the subsystem at dir, a live one if
// any, or "".
func subsysController(sys, dir string) string {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return ""
	}
	first := ""
	for _, e := range entries {
		if !ctrlName.MatchString(e.Name()) {
			continue
		}
		if first == "" {
			first = e.Name()
		}
		state, err := os.ReadFile(filepath.Join(sys, "class", "nvme", e.Name(), "state"))
		if err == nil && strings.TrimSpace(string(state)) == "live" {
			return e.Name()
		}
	}
	return first
}
