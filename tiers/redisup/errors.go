package redisup

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"kvresp/slab"
	"kvresp/tiers"
)

// failed wraps the error of command cmd, marking it tiers.ErrRefused when it is an error
// reply that refuses this one request rather than telling of the upstream's health.
func failed(cmd string, err error) error {
	if refused(err) {
		return fmt.Errorf("redisup: %s: %w: %w", cmd, tiers.ErrRefused, err)
	}
	return fmt.Errorf("redisup: %s: %w", cmd, err)
}

// refused reports whether err is an error reply refusing the request itself. Only the
// reply as go-redis hands it over counts: one found by unwrapping came from asking
// sentinels, or from several nodes, and is not the answer to this request.
//
// Codes not listed stay plain, so that a code this list does not know (LOADING, BUSY,
// MASTERDOWN, a proxy's own) counts as the upstream failing: the breaker opening on a
// request error costs a pause, ignoring an outage costs every request its deadline.
func refused(err error) bool {
	re, ok := err.(redis.Error)
	if !ok {
		return false
	}
	msg := re.Error()
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "ERR":
		for _, p := range setupReplies {
			if strings.HasPrefix(msg, p) {
				return false
			}
		}
		return true
	case "WRONGTYPE", "NOPERM":
		// NOPERM: the ACL user may not touch this key.
		return true
	case "OOM":
		// maxmemory reached with noeviction: writes fail, reads still work, and neither
		// retrying nor opening the breaker (which would stop the reads too) helps.
		return true
	}
	return false
}

// setupReplies begin the -ERR replies to what go-redis sends to set up a connection
// (HELLO or AUTH, SELECT, CLIENT SETNAME) and Redis's answer to a connection beyond
// maxclients. They say the upstream is unusable as configured or overloaded. A cluster
// client hands them over as the reply to the command that wanted the connection (Upstream.do
// tells them apart for the other clients).
var setupReplies = []string{
	"ERR AUTH", "ERR invalid password", "ERR Client sent AUTH", "ERR invalid username-password",
	"ERR DB index", "ERR invalid DB index", "ERR SELECT",
	"ERR Client names",
	"ERR max number of clients",
}

// allocFailed wraps an error of the caller's alloc: a value that can never fit is this
// node's limit, not the upstream's failing, so it refuses the request.
func allocFailed(n int, err error) error {
	if errors.Is(err, tiers.ErrTooLarge) || errors.Is(err, slab.ErrTooLarge) {
		return fmt.Errorf("redisup: GET of a %d-byte value: %w: %w", n, tiers.ErrRefused, err)
	}
	return err
}
