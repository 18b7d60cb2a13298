package s3up

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// target is where an upstream's objects live, from its s3:// URL.
type target struct {
	bucket, prefix string
	// From the query; empty (false) when not given.
	endpoint, region string
	pathStyle        bool
}

// queryParams are what an s3:// URL may set, with how each is used.
var queryParams = map[string]string{
	"endpoint":   "the S3 endpoint, e.g. http://127.0.0.1:9000",
	"region":     "the bucket's region",
	"path-style": "true to address buckets as endpoint/bucket rather than bucket.endpoint",
}

// parseURL parses s3://bucket[/prefix][?endpoint=...&region=...&path-style=true].
func parseURL(raw string) (target, error) {
	var t target
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("s3up: bad upstream URL: %w", err)
	}
	if u.Scheme != "s3" {
		return t, fmt.Errorf("s3up: upstream URL %q: the scheme must be s3, as in s3://bucket/prefix", raw)
	}
	if u.Opaque != "" {
		return t, fmt.Errorf("s3up: upstream URL %q: write s3://bucket, with two slashes", raw)
	}
	if u.User != nil {
		return t, fmt.Errorf("s3up: upstream URL %q: credentials do not go in the URL (it ends up in logs and INFO); set them in the config file or the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)", redact(u))
	}
	if u.Fragment != "" {
		return t, fmt.Errorf("s3up: upstream URL %q has a fragment (#...)", raw)
	}
	t.bucket = u.Host
	if u.Port() != "" || strings.HasSuffix(u.Host, ":") {
		return t, fmt.Errorf("s3up: upstream URL %q: a bucket has no port; the endpoint goes in ?endpoint=http://host:port", raw)
	}
	if t.bucket == "" {
		return t, fmt.Errorf("s3up: upstream URL %q names no bucket; write s3://bucket or s3://bucket/prefix", raw)
	}
	if err := s3utils.CheckValidBucketName(t.bucket); err != nil {
		return t, fmt.Errorf("s3up: upstream URL %q: bad bucket name %q: %v", raw, t.bucket, err)
	}
	if t.prefix, err = cleanPrefix(u.Path); err != nil {
		return t, fmt.Errorf("s3up: upstream URL %q: %w", raw, err)
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return t, fmt.Errorf("s3up: upstream URL %q: bad query: %w", raw, err)
	}
	for k, v := range q {
		if _, ok := queryParams[k]; !ok {
			switch k {
			case "access-key", "secret-key", "session-token", "access_key", "secret_key", "accessKey", "secretKey":
				return t, fmt.Errorf("s3up: upstream URL: credentials do not go in the URL (it ends up in logs and INFO); set them in the config file or the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
			}
			return t, fmt.Errorf("s3up: upstream URL %q: unknown parameter %q; known: %s", raw, k, knownParams())
		}
		if len(v) != 1 {
			return t, fmt.Errorf("s3up: upstream URL %q: parameter %q given %d times", raw, k, len(v))
		}
	}
	t.endpoint = q.Get("endpoint")
	t.region = q.Get("region")
	if s := q.Get("path-style"); s != "" {
		if t.pathStyle, err = strconv.ParseBool(s); err != nil {
			return t, fmt.Errorf("s3up: upstream URL %q: path-style is %q; write true or false", raw, s)
		}
	}
	return t, nil
}

func knownParams() string {
	var s []string
	for k, v := range queryParams {
		s = append(s, k+" ("+v+")")
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// cleanPrefix turns a URL path into an object name prefix: "" or segments
// ending in '/'. Segments that S3-compatible servers or proxies reject or
// rewrite ("", ".", "..") are errors rather than silently changed.
func cleanPrefix(path string) (string, error) {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return "", nil
	}
	if !utf8.ValidString(path) {
		return "", errors.New("the prefix is not valid UTF-8")
	}
	for _, seg := range strings.Split(path, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("the prefix %q has an empty segment (//)", path)
		case ".", "..":
			return "", fmt.Errorf("the prefix %q has a %q segment", path, seg)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("the prefix %q has a control character", path)
			}
		}
	}
	// Leave room for a key: a prefix near the limit would refuse them all.
	const maxPrefix = maxObjectName / 2
	if len(path)+1 > maxPrefix {
		return "", fmt.Errorf("the prefix is %d bytes; keep it under %d", len(path)+1, maxPrefix)
	}
	return path + "/", nil
}

// endpoint is where requests go.
type endpoint struct {
	host   string // host[:port], as minio-go takes it
	secure bool
}

// parseEndpoint accepts http://host[:port], https://host[:port] or a bare
// host[:port] (HTTPS), which is how AWS's and MinIO's tools are given one.
func parseEndpoint(s string) (endpoint, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: %w", raw, err)
	}
	e := endpoint{host: u.Host}
	switch u.Scheme {
	case "https":
		e.secure = true
	case "http":
	default:
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: the scheme must be http or https", raw)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: no host", raw)
	case u.User != nil:
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: credentials do not go in the endpoint", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: give only scheme, host and port (the bucket goes in the s3:// URL)", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: bad port %q", raw, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: empty port", raw)
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && !s3utils.IsValidDomain(h) {
		return endpoint{}, fmt.Errorf("s3up: bad endpoint %q: %q is neither an IP address nor a host name", raw, h)
	}
	return e, nil
}

// firstEnv returns the first of the variables that is set and not empty.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
