package s3up

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"

	"kvresp/tiers"
)

// ErrCorrupt is returned by Get when an object's bytes do not match the
// checksum Put stored beside them (bit rot, a truncated or foreign
// overwrite). The error wraps tiers.ErrRefused too: the object stays bad
// however often it is read, so retrying is useless, and one bad object says
// nothing about the health of the store. In-transit damage would be the
// exception, but TCP and TLS checksums make it far rarer than a bad object.
var ErrCorrupt = errors.New("s3up: stored value does not match its checksum")

// notFound reports whether err says the object, or its bucket, does not
// exist: for reads that is a miss.
func notFound(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	switch er.Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound":
		return true
	}
	return false
}

// transientCodes are 4xx S3 error codes that a later attempt may not get:
// throttling, a request the server timed out, credentials about to be
// refreshed, a concurrent operation on the same object.
var transientCodes = map[string]bool{
	"RequestTimeout":        true,
	"Throttling":            true,
	"ThrottlingException":   true,
	"RequestLimitExceeded":  true,
	"RequestThrottled":      true,
	"SlowDown":              true,
	"SlowDownRead":          true,
	"SlowDownWrite":         true,
	"ExpiredToken":          true,
	"ExpiredTokenException": true,
	"OperationAborted":      true,
}

// refused reports whether err is a request turned down for a reason of its
// own (a name, permissions, a bucket that is not there, a precondition),
// which says nothing about the store's health. Network errors, timeouts,
// 5xx, throttling and errors without an HTTP status (such as a 200 carrying
// an error, which S3 sends for a failed copy) are failures.
func refused(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	if transientCodes[er.Code] {
		return false
	}
	switch er.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests, 499:
		return false
	}
	return er.StatusCode >= 400 && er.StatusCode < 500
}

// opError describes a failed operation on an object, marking refusals with
// tiers.ErrRefused.
func opError(op, name string, err error) error {
	if refused(err) {
		return fmt.Errorf("s3up: cannot %s %q: %w: %w", op, name, tiers.ErrRefused, err)
	}
	return fmt.Errorf("s3up: cannot %s %q: %w", op, name, err)
}
