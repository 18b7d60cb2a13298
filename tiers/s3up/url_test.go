package s3up

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// logRecorder keeps the attributes of the records it is given.
type logRecorder struct {
	mu    sync.Mutex
	attrs []map[string]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.attrs = append(r.attrs, m)
	r.mu.Unlock()
	return nil
}

// opened returns the attributes of the line Open logged.
func (r *logRecorder) opened(t *testing.T) map[string]string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.attrs {
		if m["msg"] == "s3 upstream" {
			return m
		}
	}
	t.Fatal("Open logged no line")
	return nil
}

func TestOpenBadURLs(t *testing.T) {
	clearS3Env(t)
	for _, c := range []struct{ url, want string }{
		{"", "scheme must be s3"},
		{"http://bucket/x", "scheme must be s3"},
		{"s3://", "names no bucket"},
		{"s3:///prefix", "names no bucket"},
		{"s3:bucket", "two slashes"},
		{"s3://Bad_Bucket!", "bad bucket name"},
		{"s3://ab", "bad bucket name"},
		{"s3://bucket:9000/x", "a bucket has no port"},
		{"s3://key:secret@bucket", "credentials do not go in the URL"},
		{"s3://bucket?secret-key=x", "credentials do not go in the URL"},
		{"s3://bucket?endpint=x", `unknown parameter "endpint"`},
		{"s3://bucket?region=a&region=b", "given 2 times"},
		{"s3://bucket?path-style=maybe", "path-style"},
		{"s3://bucket/a//b", "empty segment"},
		{"s3://bucket/a/../b", `".." segment`},
		{"s3://bucket/./b", `"." segment`},
		{"s3://bucket/%FF", "not valid UTF-8"},
		{"s3://bucket/a%00b", "control character"},
		{"s3://bucket/" + strings.Repeat("p", 600), "keep it under"},
		{"s3://bucket#frag", "fragment"},
		{"s3://bucket?endpoint=ftp://host", "scheme must be http or https"},
		{"s3://bucket?endpoint=http://", "no host"},
		{"s3://bucket?endpoint=http://host/path", "give only scheme, host and port"},
		{"s3://bucket?endpoint=http://host:99999", "bad port"},
		{"s3://bucket?endpoint=http://u:p@host", "credentials do not go in the endpoint"},
		{"s3://bucket?endpoint=http://ho%24st", "bad endpoint"},
	} {
		u, err := Open(c.url, Options{Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			u.Close()
			t.Errorf("Open(%q) succeeded, want an error with %q", c.url, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v; want it to say %q", c.url, err, c.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{PartSize: 1 << 20, AccessKey: "a", SessionToken: "t", Endpoint: "gopher://x"}.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"part size", "secret key", "scheme must be http or https"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to say %q", err, want)
		}
	}
	if err := (Options{SessionToken: "t"}).Validate(); err == nil || !strings.Contains(err.Error(), "session token") {
		t.Errorf("a session token alone: %v", err)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
	if _, err := Open("s3://bucket", Options{PartSize: 1}); err == nil {
		t.Error("Open took a bad part size")
	}
}

// TestOpenSettings checks where the endpoint, region, addressing and
// credentials come from: Options, else the URL, else the environment, else
// the defaults. Open sends nothing, so none of these endpoints is contacted.
func TestOpenSettings(t *testing.T) {
	clearS3Env(t)
	open := func(url string, o Options) map[string]string {
		t.Helper()
		rec := &logRecorder{}
		o.Logger = slog.New(rec)
		u, err := Open(url, o)
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		defer u.Close()
		m := rec.opened(t)
		m["bucket"], m["prefix"] = u.Bucket(), u.Prefix()
		return m
	}
	check := func(m map[string]string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %q, want %q (all: %v)", k, m[k], v, m)
			}
		}
	}

	check(open("s3://bucket", Options{}), map[string]string{
		"bucket": "bucket", "prefix": "", "endpoint": "https://s3.amazonaws.com", "region": "",
		"endpoint_from": "default", "path_style": "false", "credentials": "chain",
	})
	check(open("s3://bucket/", Options{}), map[string]string{"prefix": ""})
	check(open("s3://bucket/a/b%20c/", Options{}), map[string]string{"prefix": "a/b c/"})
	check(open("s3://bucket/kvresp?region=eu-west-1", Options{}), map[string]string{
		"prefix": "kvresp/", "region": "eu-west-1", "endpoint": "https://s3.amazonaws.com",
	})
	check(open("s3://bucket?endpoint=http://127.0.0.1:9000&path-style=true", Options{}), map[string]string{
		"endpoint": "http://127.0.0.1:9000", "endpoint_from": "url", "region": "us-east-1", "path_style": "true",
	})
	check(open("s3://bucket?endpoint=minio.local:9000", Options{}), map[string]string{
		"endpoint": "https://minio.local:9000",
	})
	check(open("s3://bucket?endpoint=http://127.0.0.1:9000&region=r1", Options{Endpoint: "https://s3.example.net", Region: "r2", PathStyle: true, AccessKey: "a", SecretKey: "s"}), map[string]string{
		"endpoint": "https://s3.example.net", "endpoint_from": "config", "region": "r2", "path_style": "true", "credentials": "config",
	})

	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.2:9000")
	t.Setenv("AWS_DEFAULT_REGION", "r-default")
	check(open("s3://bucket", Options{}), map[string]string{"endpoint": "http://127.0.0.2:9000", "endpoint_from": "env", "region": "r-default"})
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.3:9000")
	t.Setenv("AWS_REGION", "r-env")
	check(open("s3://bucket", Options{}), map[string]string{"endpoint": "http://127.0.0.3:9000", "region": "r-env"})
	check(open("s3://bucket?endpoint=http://127.0.0.4:9000&region=r-url", Options{}), map[string]string{"endpoint": "http://127.0.0.4:9000", "region": "r-url"})

	t.Setenv("AWS_ENDPOINT_URL_S3", "ftp://nope")
	if _, err := Open("s3://bucket", Options{}); err == nil || !strings.Contains(err.Error(), "from env") {
		t.Errorf("a bad endpoint in the environment: %v", err)
	}
}
