package uptest

import (
	"testing"

	"kvresp/slab"
)

// Arena returns a slab arena of limit bytes for a test's values. When the
// test ends it checks that every buffer was released (an upstream that
// leaks one on an error path fails the test that took it) and that the
// arena is consistent, then closes it.
func Arena(tb testing.TB, limit int64) *slab.Arena {
	tb.Helper()
	a, err := slab.New(slab.Options{Limit: limit})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if st := a.Stats(); st.InUse != 0 {
			tb.Errorf("slab: %d bytes of buffers were not released", st.InUse)
		}
		if err := a.Check(); err != nil {
			tb.Error(err)
		}
		if err := a.Close(); err != nil {
			tb.Error(err)
		}
	})
	return a
}
