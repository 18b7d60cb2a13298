package fdp

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Info is what Probe learns about a namespace and its FDP state; `kvresp fdp info` prints it
// with WriteText, or as JSON.
type Info struct {
	Device         string        `json:"device"` // the namespace character device
	NSID           uint32        `json:"nsid"`
	ControllerPath string        `json:"controller_path"`
	Controller     *IDController `json:"controller"`
	Namespace      *IDNamespace  `json:"namespace"`
	EnduranceGroup uint16        `json:"endurance_group"`
	FDPEnabled     bool          `json:"fdp_enabled"`
	ConfigIndex    uint8         `json:"fdp_config_index"`
	Config         *FDPConfig    `json:"fdp_config,omitempty"` // the configuration in use
	Usage          []RUHUsage    `json:"ruh_usage,omitempty"`
	RUHs           []RUHStatus   `json:"ruh_status,omitempty"`
	Stats          *Stats        `json:"stats,omitempty"`
	Events         []FDPEvent    `json:"events,omitempty"` // the most recent, oldest first
	Warnings       []string      `json:"warnings,omitempty"`
}

// Stats is the FDP statistics log with the write amplification it implies.
type Stats struct {
	FDPStats
	WriteAmplification float64 `json:"write_amplification"` // media over host bytes written; 0 before any write
}

// FDPSupported reports whether the controller supports FDP.
func (i *Info) FDPSupported() bool { return i.Controller != nil && i.Controller.FDPSupported }

// WriteJSON writes i as indented JSON.
func (i *Info) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(i)
}

// WriteText writes i for a person: aligned columns, sizes in binary units.
func (i *Info) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	kv := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	c, ns := i.Controller, i.Namespace
	kv("Device", "%s (namespace %d)", i.Device, i.NSID)
	kv("Controller", "%s", i.ControllerPath)
	if c != nil {
		kv("Model", "%s", c.Model)
		kv("Serial", "%s", c.Serial)
		kv("Firmware", "%s", c.Firmware)
		kv("Vendor ID", "%#04x (subsystem %#04x)", c.VendorID, c.SubsystemVendorID)
		kv("NVMe version", "%s", c.VersionString())
		if c.MaxTransfer == 0 {
			kv("Max transfer", "no limit (MDTS 0)")
		} else {
			kv("Max transfer", "%s (MDTS %d, in %s pages)", iec(c.MaxTransfer), c.MDTS, iec(MinPageSize))
		}
		kv("Namespaces", "%d", c.Namespaces)
	}
	if ns != nil {
		kv("Namespace size", "%s: %d blocks of %s (LBA format %d)", iec(ns.Bytes()), ns.Size, iec(uint64(ns.LBASize)), ns.FormatIndex)
		kv("Endurance group", "%d", i.EnduranceGroup)
	}
	switch {
	case !i.FDPSupported():
		kv("FDP", "not supported")
	case !i.FDPEnabled:
		kv("FDP", "supported, disabled")
	default:
		kv("FDP", "supported, enabled, configuration %d", i.ConfigIndex)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if cf := i.Config; cf != nil {
		fmt.Fprintf(tw, "\nFDP configuration %d\n", cf.Index)
		kv("  Reclaim groups", "%d", cf.ReclaimGroups)
		kv("  Reclaim unit handles", "%d%s", cf.Handles, handleTypes(cf.RUHs))
		kv("  Max placement IDs", "%d", cf.MaxPIDs)
		kv("  Namespaces", "%d", cf.Namespaces)
		kv("  Reclaim unit size", "%s", iec(cf.RUSize))
		if cf.RUTimeLimit == 0 {
			kv("  RU time limit", "not reported")
		} else {
			kv("  RU time limit", "%s", time.Duration(cf.RUTimeLimit)*time.Second)
		}
		kv("  Volatile write cache", "%s", yesNo(cf.VolatileWriteCache))
		if !cf.Valid {
			kv("  Valid", "no")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(i.RUHs) > 0 {
		var lba uint64
		if ns != nil {
			lba = uint64(ns.LBASize)
		}
		fmt.Fprintf(tw, "\nPlacement IDs (RUH status)\n")
		fmt.Fprintf(tw, "  PID\tRUHID\tTYPE\tUSE\tRU AVAILABLE\tRU TIME LEFT\n")
		for _, r := range i.RUHs {
			avail := fmt.Sprintf("%d blocks", r.RUAMW)
			if lba != 0 && r.RUAMW <= ^uint64(0)/lba {
				avail += " (" + iec(r.RUAMW*lba) + ")"
			}
			left := "-"
			if r.EARUTR != 0 {
				left = (time.Duration(r.EARUTR) * time.Second).String()
			}
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\n", r.PID, r.RUHID, i.ruhType(r.RUHID), i.ruhUse(r.RUHID), avail, left)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if s := i.Stats; s != nil {
		fmt.Fprintf(tw, "\nStatistics\n")
		kv("  Host bytes written", "%s", u128Text(s.HostBytesWritten))
		kv("  Media bytes written", "%s", u128Text(s.MediaBytesWritten))
		kv("  Media bytes erased", "%s", u128Text(s.MediaBytesErased))
		if s.WriteAmplification == 0 {
			kv("  Write amplification", "- (nothing written yet)")
		} else {
			kv("  Write amplification", "%.2f", s.WriteAmplification)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if i.FDPEnabled {
		if len(i.Events) == 0 {
			fmt.Fprintf(tw, "\nEvents: none logged\n")
		} else {
			fmt.Fprintf(tw, "\nEvents (%d most recent, oldest first)\n", len(i.Events))
			fmt.Fprintf(tw, "  TIME\tSOURCE\tTYPE\tPID\tNSID\tRG\tRUHID\n")
			for _, e := range i.Events {
				src := "controller"
				if e.Host {
					src = "host"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", eventTime(e), src, EventTypeName(e.Type),
					ifFlag(e.Flags, EventPIDValid, e.PID), ifFlag(e.Flags, EventNSIDValid, e.NSID),
					ifFlag(e.Flags, EventLocationValid, e.RGID), ifFlag(e.Flags, EventLocationValid, e.RUHID))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(i.Warnings) > 0 {
		fmt.Fprintf(tw, "\nWarnings\n")
		for _, w := range i.Warnings {
			fmt.Fprintf(tw, "  %s\n", w)
		}
	}
	return tw.Flush()
}

// ruhType names the type of handle id in the active configuration.
func (i *Info) ruhType(id uint16) string {
	if i.Config == nil || int(id) >= len(i.Config.RUHs) {
		return "-"
	}
	return RUHTypeName(i.Config.RUHs[id].Type)
}

// ruhUse names the usage attribute of handle id.
func (i *Info) ruhUse(id uint16) string {
	if int(id) >= len(i.Usage) {
		return "-"
	}
	return RUHAName(i.Usage[id].Attr)
}

// handleTypes summarises the handles' types: " (0-7 initially isolated)".
func handleTypes(ruhs []RUHDesc) string {
	if len(ruhs) == 0 {
		return ""
	}
	byType := map[uint8][]int{}
	var order []uint8
	for id, r := range ruhs {
		if _, ok := byType[r.Type]; !ok {
			order = append(order, r.Type)
		}
		byType[r.Type] = append(byType[r.Type], id)
	}
	parts := make([]string, len(order))
	for k, t := range order {
		parts[k] = intRanges(byType[t]) + " " + RUHTypeName(t)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func ifFlag[T uint16 | uint32](flags, bit uint8, v T) string {
	if flags&bit == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

// eventTime formats an event's timestamp: a UTC time when the host set the controller's clock,
// else the time since the controller's reset.
func eventTime(e FDPEvent) string {
	if e.TimestampOrigin == 1 {
		return time.UnixMilli(int64(e.Timestamp)).UTC().Format("2006-01-02 15:04:05.000Z")
	}
	return (time.Duration(e.Timestamp) * time.Millisecond).String() + " after reset"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// u128Text formats a byte counter: "1 MiB (1048576)".
func u128Text(u Uint128) string {
	if u.Hi != 0 {
		return u.String()
	}
	return fmt.Sprintf("%s (%d)", iec(u.Lo), u.Lo)
}

// iec formats n bytes in the largest binary unit not above it: "64 MiB", "1.5 GiB", "512 B".
func iec(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	shift, u := 10, 0
	for u+1 < len(units) && n>>(shift+10) != 0 {
		shift += 10
		u++
	}
	if n&(1<<shift-1) == 0 {
		return fmt.Sprintf("%d %ciB", n>>shift, units[u])
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(uint64(1)<<shift), units[u])
}
