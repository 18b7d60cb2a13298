package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"kvresp/internal/memsize"
)

// parseMemory parses maxmemory's value: a size, or "N%" (1 <= N <= 100)
// meaning that share of physicalMemory().
func parseMemory(s string) (int64, error) {
	p, ok := strings.CutSuffix(s, "%")
	if !ok {
		return memsize.Parse(s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 100 {
		return 0, errors.New("percentage must be an integer from 1% to 100%")
	}
	mem, err := physicalMemory()
	if err != nil {
		return 0, fmt.Errorf("cannot use a percentage: %w", err)
	}
	return mem/100*int64(n) + mem%100*int64(n)/100, nil // mem*n/100 without overflow
}

// physicalMemory is the memory this process may use: MemTotal from
// /proc/meminfo, lowered to the memory cgroup's limit when there is one, so
// that "50%" inside a container means half of the container, not of the host.
func physicalMemory() (int64, error) {
	total, err := memTotal("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	if lim, ok := cgroupMemoryLimit(); ok && lim < total {
		total = lim
	}
	return total, nil
}

func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read the machine's memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "MemTotal:       24684092 kB"
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil || kb <= 0 || kb > math.MaxInt64>>10 {
			return 0, fmt.Errorf("cannot read the machine's memory size: bad MemTotal line %q in %s", sc.Text(), path)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("cannot read the machine's memory size: no MemTotal in %s", path)
}

// cgroupMemoryLimit returns the lowest memory limit among this process's
// cgroups (v2 memory.max, v1 memory.limit_in_bytes), if any is readable. A
// container often mounts its own cgroup at the root of /sys/fs/cgroup while
// /proc/self/cgroup still names the host's path, so the root is tried too.
func cgroupMemoryLimit() (int64, bool) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var lim int64 = math.MaxInt64
	for line := range strings.Lines(string(data)) {
		// "0::/system.slice/kvresp.service" (v2) or "4:memory:/docker/…" (v1).
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir, file string
		switch {
		case f[0] == "0" && f[1] == "":
			dir, file = "/sys/fs/cgroup", "memory.max"
		case f[1] == "memory":
			dir, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for _, p := range []string{dir + f[2] + "/" + file, dir + "/" + file} {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			// "max" (v2) fails to parse and a number near MaxInt64 (v1)
			// exceeds MemTotal: both mean no limit.
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < lim {
				lim = n
			}
			break
		}
	}
	return lim, lim != math.MaxInt64
}
