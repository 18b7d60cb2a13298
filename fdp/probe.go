package fdp

import (
	"errors"
	"fmt"
	"slices"
)

// maxEvents is how many of the most recent FDP events Probe keeps.
const maxEvents = 16

// Probe gathers what `kvresp fdp info` shows about namespace device ngPath (/dev/ngXnY): the
// controller and namespace, whether FDP is supported and enabled, the active configuration, the
// RUH status, statistics and recent events. It fails only when the devices cannot be opened or
// identified; an FDP page the device will not give is a warning in Info.Warnings. It needs
// CAP_SYS_ADMIN.
func Probe(ngPath string) (*Info, error) {
	ns, err := openNamespace(ngPath, false) // Probe only reads
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	ctrlPath, err := ControllerPath(ngPath)
	if err != nil {
		return nil, err
	}
	ctrl, err := OpenController(ctrlPath)
	if err != nil {
		return nil, err
	}
	defer ctrl.Close()
	info := &Info{Device: ngPath, NSID: ns.NSID(), ControllerPath: ctrlPath, Controller: ctrl.Identify()}
	if info.Namespace, err = ctrl.IdentifyNamespace(ns.NSID()); err != nil {
		return nil, fmt.Errorf("%s: %w", ctrlPath, err)
	}
	info.EnduranceGroup = info.Namespace.EndGID
	if !info.Controller.FDPSupported {
		return info, nil
	}
	if info.EnduranceGroup == 0 {
		// FDP lives in endurance groups, so a device with FDP should report one; group 1 is the
		// only one there is on QEMU and most drives.
		info.EnduranceGroup = 1
		info.warn("the namespace reports no endurance group; assuming group 1")
	}
	eg := info.EnduranceGroup
	feat, err := ctrl.FDPFeature(eg)
	var st Status
	switch {
	case errors.As(err, &st):
		// QEMU answers invalid field when FDP is off; the spec says FDP disabled.
		if !errors.Is(st, StatusInvalidField) && !errors.Is(st, StatusFDPDisabled) {
			info.warn("get features FDP: %v", err)
		}
		return info, nil
	case err != nil:
		return nil, err
	}
	info.FDPEnabled, info.ConfigIndex = feat.Enabled, feat.ConfigIndex
	if !feat.Enabled {
		return info, nil
	}
	if cl, err := ctrl.FDPConfigs(eg); err != nil {
		info.warn("FDP configurations log: %v", err)
	} else if int(feat.ConfigIndex) < len(cl.Configs) {
		info.Config = &cl.Configs[feat.ConfigIndex]
	} else {
		info.warn("the FDP configurations log has %d configurations, the controller uses number %d", len(cl.Configs), feat.ConfigIndex)
	}
	if info.Usage, err = ctrl.RUHUsage(eg); err != nil {
		info.warn("RUH usage log: %v", err)
	}
	if info.RUHs, err = ns.RUHStatus(); err != nil {
		info.warn("RUH status: %v", err)
	}
	if s, err := ctrl.FDPStats(eg); err != nil {
		info.warn("FDP statistics log: %v", err)
	} else {
		info.Stats = &Stats{FDPStats: s, WriteAmplification: s.WriteAmplification()}
	}
	for _, host := range []bool{true, false} {
		ev, err := ctrl.FDPEvents(eg, host)
		if err != nil {
			info.warn("FDP events log: %v", err)
			continue
		}
		info.Events = append(info.Events, ev...)
	}
	info.Events = recentEvents(info.Events, maxEvents)
	return info, nil
}

// recentEvents returns the n most recent of evs, oldest first.
func recentEvents(evs []FDPEvent, n int) []FDPEvent {
	slices.SortStableFunc(evs, func(a, b FDPEvent) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return 0
	})
	return evs[max(0, len(evs)-n):]
}

func (i *Info) warn(format string, args ...any) {
	i.Warnings = append(i.Warnings, fmt.Sprintf(format, args...))
}
