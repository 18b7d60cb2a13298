package uptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is an S3 service in the test process, for tests of the S3 upstream
// and of what runs over it: gofakes3 with its in-memory backend on a
// loopback HTTP server, holding one bucket, reached path-style. It takes
// requests signed with any key: a test that cares who signed looks at the
// Authorization header in a wrapper.
type S3 struct {
	// URL is the endpoint: http://127.0.0.1:port.
	URL string
	// Bucket is the bucket it holds, empty at the start.
	Bucket string
}

// StartS3 starts an S3 holding bucket, which it stops when the test ends.
// wrap, when not nil, is given gofakes3's handler and returns the one
// served: for recording requests and injecting faults.
func StartS3(tb testing.TB, bucket string, wrap func(http.Handler) http.Handler) *S3 {
	tb.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		tb.Fatal(err)
	}
	h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &S3{URL: srv.URL, Bucket: bucket}
}

// Client returns a plain minio-go client of s that signs with the given
// key, for looking at the objects behind an upstream.
func (s *S3) Client(tb testing.TB, accessKey, secretKey string) *minio.Client {
	tb.Helper()
	c, err := minio.New(strings.TrimPrefix(s.URL, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:       "us-east-1", // any region: the fake takes every one; set, it spares a location lookup
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// WriteS3Error answers a request, in a wrapper given to StartS3, with an
// S3 error as S3 sends it: status, and a body naming code (InternalError,
// PreconditionFailed, …) with message, both written as they are.
func WriteS3Error(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>`+message+`</Message></Error>`)
}
