package fdp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PIDs are the placement identifiers kvresp's NVMe tier writes with: metadata (superblocks,
// region headers), hot data (recent writes) and cold data (what reclaim moves). Keeping them in
// separate reclaim units lets the device erase whole units without copying.
type PIDs struct {
	Meta uint16 `json:"meta"`
	Hot  uint16 `json:"hot"`
	Cold uint16 `json:"cold"`
}

// String formats p the way ParsePIDs reads it.
func (p PIDs) String() string { return fmt.Sprintf("meta:%d,hot:%d,cold:%d", p.Meta, p.Hot, p.Cold) }

// DefaultPIDs picks the first three distinct placement identifiers of the RUH status list, in
// its order, for meta, hot and cold.
func DefaultPIDs(ruhs []RUHStatus) (meta, hot, cold uint16, err error) {
	var got []uint16
	for _, r := range ruhs {
		if !slices.Contains(got, r.PID) {
			got = append(got, r.PID)
			if len(got) == 3 {
				return got[0], got[1], got[2], nil
			}
		}
	}
	return 0, 0, 0, fmt.Errorf("fdp: the namespace has %d placement identifiers; kvresp needs 3 (meta, hot, cold): give the namespace more placement handles", len(got))
}

// ParsePIDs reads the fdp-pids setting, "meta:0,hot:1,cold:2": each of meta, hot and cold once,
// in any order, with distinct placement identifiers. When ruhs is not nil each identifier must
// be one of the namespace's (a device may take an unknown one without complaint: QEMU writes
// it to PID 0). Every problem is reported at once.
func ParsePIDs(s string, ruhs []RUHStatus) (PIDs, error) {
	var p PIDs
	var errs []error
	seen := map[string]bool{}
	owner := map[uint16]string{}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), ":")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok {
			errs = append(errs, fmt.Errorf("fdp-pids: %q is not name:pid (for example meta:0,hot:1,cold:2)", strings.TrimSpace(part)))
			continue
		}
		var dst *uint16
		switch name {
		case "meta":
			dst = &p.Meta
		case "hot":
			dst = &p.Hot
		case "cold":
			dst = &p.Cold
		default:
			errs = append(errs, fmt.Errorf("fdp-pids: unknown name %q; the names are meta, hot and cold", name))
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("fdp-pids: %s is given twice", name))
			continue
		}
		seen[name] = true
		n, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			errs = append(errs, fmt.Errorf("fdp-pids: %s:%s: a placement identifier is a number from 0 to 65535", name, val))
			continue
		}
		pid := uint16(n)
		*dst = pid
		if o, dup := owner[pid]; dup {
			errs = append(errs, fmt.Errorf("fdp-pids: %s and %s both use placement identifier %d; each needs its own", o, name, pid))
		}
		owner[pid] = name
		if ruhs != nil && !slices.ContainsFunc(ruhs, func(r RUHStatus) bool { return r.PID == pid }) {
			errs = append(errs, fmt.Errorf("fdp-pids: %s:%d: the namespace has no placement identifier %d (it has %s)", name, pid, pid, pidList(ruhs)))
		}
	}
	for _, name := range []string{"meta", "hot", "cold"} {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("fdp-pids: %s is missing", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return PIDs{}, err
	}
	return p, nil
}

// pidList formats the placement identifiers of ruhs: "0-7", "0, 2, 5", or "none".
func pidList(ruhs []RUHStatus) string {
	if len(ruhs) == 0 {
		return "none"
	}
	pids := make([]int, len(ruhs))
	for i, r := range ruhs {
		pids[i] = int(r.PID)
	}
	return intRanges(pids)
}

// intRanges formats sorted runs of consecutive numbers as "a-b", joined by ", ".
func intRanges(v []int) string {
	v = slices.Clone(v)
	slices.Sort(v)
	v = slices.Compact(v)
	var parts []string
	for i := 0; i < len(v); {
		j := i
		for j+1 < len(v) && v[j+1] == v[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(v[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", v[i], v[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
