package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"kvresp/fdp"
)

// fakeProbe replaces fdp.Probe for the test: it answers for /dev/ng0n1 and fails otherwise.
func fakeProbe(t *testing.T) *[]string {
	t.Helper()
	var calls []string
	old := probeFDP
	t.Cleanup(func() { probeFDP = old })
	probeFDP = func(dev string) (*fdp.Info, error) {
		calls = append(calls, dev)
		switch dev {
		case "/dev/ng0n1":
			return &fdp.Info{
				Device: dev, NSID: 1, ControllerPath: "/dev/nvme0",
				Controller: &fdp.IDController{Serial: "deadbeef", FDPSupported: true, MDTS: 7, MaxTransfer: 512 << 10},
				Namespace:  &fdp.IDNamespace{Size: 1 << 21, LBADS: 9, LBASize: 512, EndGID: 1},
				FDPEnabled: true, EnduranceGroup: 1,
				RUHs: []fdp.RUHStatus{{PID: 0, RUHID: 0, RUAMW: 131072}},
			}, nil
		case "/dev/ng9n9":
			return nil, &fs.PathError{Op: "open", Path: dev, Err: fs.ErrPermission}
		}
		return nil, fmt.Errorf("open %s: %w", dev, fs.ErrNotExist)
	}
	return &calls
}

func TestFdpCommandArgs(t *testing.T) {
	calls := fakeProbe(t)
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"help"}, 0, "kvresp fdp info [-json] DEVICE", ""}, // kvresp's own usage lists it
		{[]string{"fdp"}, 2, "", "usage: kvresp fdp info"},
		{[]string{"fdp", "help"}, 0, "usage: kvresp fdp info", ""},
		{[]string{"fdp", "-h"}, 0, "usage: kvresp fdp info", ""},
		{[]string{"fdp", "inf"}, 2, "", `unknown command "inf"`},
		{[]string{"fdp", "info"}, 2, "", "want one DEVICE, got 0"},
		{[]string{"fdp", "info", "/dev/ng0n1", "/dev/ng1n1"}, 2, "", "want one DEVICE, got 2"},
		{[]string{"fdp", "info", "-jsn", "/dev/ng0n1"}, 2, "", "flag provided but not defined: -jsn"},
		{[]string{"fdp", "info", "-h"}, 0, "usage: kvresp fdp info", ""},
		{[]string{"fdp", "info", "/dev/ng0n1"}, 0, "deadbeef", ""},
		{[]string{"fdp", "info", "/dev/ng9n9"}, 1, "", "needs root or CAP_SYS_ADMIN"},
		{[]string{"fdp", "info", "/dev/nvme0n1"}, 1, "", "the namespace's character device is /dev/ngXnY"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.inStdout) || !strings.Contains(stderr.String(), tc.inStderr) {
			t.Errorf("%q: exit %d (want %d)\nstdout: %s\nstderr: %s", tc.args, code, tc.code, stdout.String(), stderr.String())
		}
	}
	// Only the complete commands reached the device.
	if want := []string{"/dev/ng0n1", "/dev/ng9n9", "/dev/nvme0n1"}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Errorf("probed %q, want %q", *calls, want)
	}
}

func TestFdpInfoJSON(t *testing.T) {
	fakeProbe(t)
	// -json before or after the device.
	for _, args := range [][]string{{"fdp", "info", "-json", "/dev/ng0n1"}, {"fdp", "info", "/dev/ng0n1", "-json"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		var got fdp.Info
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, stdout.String())
		}
		if got.Device != "/dev/ng0n1" || got.Controller.Serial != "deadbeef" || !got.FDPEnabled || len(got.RUHs) != 1 {
			t.Fatalf("%q: %+v", args, got)
		}
	}
}

func TestFdpInfoUnsupported(t *testing.T) {
	old := probeFDP
	t.Cleanup(func() { probeFDP = old })
	probeFDP = func(string) (*fdp.Info, error) {
		return nil, errors.Join(errors.New("fdp: NVMe passthrough needs Linux"), errors.ErrUnsupported)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"fdp", "info", "/dev/ng0n1"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "needs Linux") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
