package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

	"kvresp/fdp"
)

const fdpUsage = `usage: kvresp fdp info [-json] DEVICE
  Prints what an NVMe namespace reports about Flexible Data Placement: the controller and
  namespace, whether FDP is enabled, the active configuration, the placement IDs with their
  reclaim unit handles, the statistics (write amplification) and recent events.
  DEVICE is the namespace's character device, /dev/ngXnY (not /dev/nvmeXnY); its controller
  /dev/nvmeX is found through sysfs. Nothing is written. Needs root (CAP_SYS_ADMIN).
  -json   print JSON instead of text
`

// probeFDP is fdp.Probe; the tests replace it.
var probeFDP = fdp.Probe

// fdpCommand is `kvresp fdp SUBCOMMAND ...`.
func fdpCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, fdpUsage)
		return 2
	}
	switch args[0] {
	case "info":
		return fdpInfo(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, fdpUsage)
		return 0
	}
	fmt.Fprintf(stderr, "kvresp fdp: unknown command %q\n%s", args[0], fdpUsage)
	return 2
}

// fdpInfo is `kvresp fdp info [-json] DEVICE`; the flag may come after the device too.
func fdpInfo(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("kvresp fdp info", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	asJSON := fset.Bool("json", false, "print JSON")
	var devs []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, fdpUsage)
				return 0
			}
			fmt.Fprintf(stderr, "kvresp fdp info: %v\n%s", err, fdpUsage)
			return 2
		}
		if fset.NArg() == 0 {
			break
		}
		devs = append(devs, fset.Arg(0))
		args = fset.Args()[1:]
	}
	if len(devs) != 1 {
		fmt.Fprintf(stderr, "kvresp fdp info: want one DEVICE, got %d\n%s", len(devs), fdpUsage)
		return 2
	}
	info, err := probeFDP(devs[0])
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			hint = " (NVMe passthrough needs Linux with io_uring)"
		case errors.Is(err, fs.ErrPermission):
			hint = " (NVMe passthrough needs root or CAP_SYS_ADMIN)"
		case errors.Is(err, fs.ErrNotExist):
			hint = " (the namespace's character device is /dev/ngXnY; see ls /dev/ng*)"
		}
		fmt.Fprintf(stderr, "kvresp fdp info: %v%s\n", err, hint)
		return 1
	}
	if *asJSON {
		err = info.WriteJSON(stdout)
	} else {
		err = info.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvresp fdp info: %v\n", err)
		return 1
	}
	return 0
}
