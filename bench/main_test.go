package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as `kvresp bench` when
// KVRESP_BENCH_MAIN is set: `go test -c`, then run it with bench flags.
func TestMain(m *testing.M) {
	if os.Getenv("KVRESP_BENCH_MAIN") != "" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
