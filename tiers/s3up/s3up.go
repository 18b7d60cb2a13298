// Package s3up is the S3 upstream: a tiers.Upstream that keeps each key as
// one object of a bucket (AWS S3, MinIO or any S3-compatible store), named by
// ObjectName under the prefix of its s3://bucket/prefix URL. An object holds
// the value's bytes exactly; its user metadata hold the expiry (absolute Unix
// milliseconds, 0 for none) and a checksum of the value that Get verifies,
// so a damaged or truncated object is an error, never wrong bytes. Each call
// is one attempt, bounded by its context: retries, deadlines and the circuit
// breaker are tiers.Proxy's. Expiry is kvresp's own: S3 does not delete an
// expired object, it is a miss until it is overwritten or deleted.
package s3up

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"kvresp/tiers"
)

const (
	// minPartSize and maxPartSize are S3's limits on a multipart upload's
	// parts.
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	// defaultPartSize makes every value up to 80 MiB one PUT. A single PUT is
	// one request where a multipart upload takes at least three (create,
	// parts, complete), it is atomic, and a failed one leaves nothing behind
	// (an abandoned multipart upload is billed until it is aborted). The
	// value is already in memory, so multipart's gains (streaming of unknown
	// length, resuming a part) do not apply; only its parallelism would,
	// for values large enough that the time to send them dominates. 80 MiB
	// is where kvresp's buffer sizing stops treating a value as ordinary
	// (see slab's wait timeout); S3 takes single PUTs up to 5 GiB.
	defaultPartSize = 80 << 20
	// defaultRegion is used with an endpoint that is not AWS's when no region
	// is given: S3-compatible stores accept it, and naming one spares a
	// GetBucketLocation request before the first call.
	defaultRegion = "us-east-1"
	// awsEndpoint is AWS S3; minio-go picks the region's own host from it.
	awsEndpoint = "s3.amazonaws.com"
)

// Options are an upstream's explicit settings; each one given wins over the
// URL's query and the environment. Zero values mean defaults.
type Options struct {
	// Endpoint is http://host[:port] (no TLS), https://host[:port] or
	// host[:port] (TLS). Else the URL's endpoint parameter, else
	// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3.
	Endpoint string
	// Region is the bucket's region. Else the URL's region parameter, else
	// AWS_REGION or AWS_DEFAULT_REGION, else found by asking AWS S3 (for
	// its endpoint) or us-east-1 (for any other).
	Region string
	// AccessKey and SecretKey (and SessionToken, for temporary credentials)
	// sign requests. Without them credentials come from the environment,
	// the AWS shared credentials file or IAM, as AWS's tools find them.
	AccessKey, SecretKey, SessionToken string
	// PathStyle addresses the bucket as endpoint/bucket rather than
	// bucket.endpoint; also set by path-style=true in the URL. Without it
	// minio-go decides: bucket.endpoint for AWS, endpoint/bucket for any
	// other endpoint (MinIO and most S3-compatible stores).
	PathStyle bool
	// Insecure skips verification of the endpoint's TLS certificate.
	Insecure bool
	// PartSize is the size of the parts of a multipart upload, which Put
	// uses for values larger than it; 0 means 80 MiB. S3 needs 5 MiB to 5 GiB.
	PartSize int64
	// Logger receives a line when the upstream is opened and one per
	// corrupt object; nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.PartSize != 0 && (o.PartSize < minPartSize || o.PartSize > maxPartSize) {
		errs = append(errs, fmt.Errorf("s3up: part size is %d bytes; S3 needs 5mb to 5gb (or 0 for the default, 80mb)", o.PartSize))
	}
	if (o.AccessKey == "") != (o.SecretKey == "") {
		errs = append(errs, errors.New("s3up: give both the access key and the secret key, or neither (to take credentials from the environment)"))
	}
	if o.SessionToken != "" && o.AccessKey == "" {
		errs = append(errs, errors.New("s3up: a session token is given without the access key and secret key it goes with"))
	}
	if o.Endpoint != "" {
		if _, err := parseEndpoint(o.Endpoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Upstream is an S3 bucket (or a prefix in one) as a tiers.Upstream. It is
// safe for concurrent use.
type Upstream struct {
	client   *minio.Client
	core     minio.Core // the same client; its GetObject hands back the response body and headers at once
	tr       *http.Transport
	bucket   string
	prefix   string
	partSize uint64
	log      *slog.Logger
	// now is the clock expiries are compared with, Unix milliseconds.
	now func() int64
}

var _ tiers.Upstream = (*Upstream)(nil)

// Open returns the upstream for an s3://bucket[/prefix] URL. It sends no
// request (the store need not be up); Ping checks that the bucket is there.
func Open(rawURL string, o Options) (*Upstream, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}

	endpointSrc := "default"
	epStr := awsEndpoint
	switch {
	case o.Endpoint != "":
		epStr, endpointSrc = o.Endpoint, "config"
	case t.endpoint != "":
		epStr, endpointSrc = t.endpoint, "url"
	default:
		if v := firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"); v != "" {
			epStr, endpointSrc = v, "env"
		}
	}
	ep, err := parseEndpoint(epStr)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, endpointSrc)
	}

	region := o.Region
	if region == "" {
		region = t.region
	}
	if region == "" {
		region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}

	var creds *credentials.Credentials
	credSrc := "config"
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	} else {
		creds, credSrc = newChainCredentials(), "chain"
	}

	tr, err := minio.DefaultTransport(ep.secure)
	if err != nil {
		return nil, fmt.Errorf("s3up: cannot make the HTTP transport: %w", err)
	}
	if ep.secure && o.Insecure {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true
	}

	if region == "" && !s3utils.IsAmazonEndpoint(url.URL{Host: ep.host}) {
		region = defaultRegion
	}

	lookup := minio.BucketLookupAuto
	if o.PathStyle || t.pathStyle {
		lookup = minio.BucketLookupPath
	}
	mo := &minio.Options{
		Creds:        creds,
		Secure:       ep.secure,
		Transport:    tr,
		Region:       region,
		BucketLookup: lookup,
		// One call is one attempt: tiers.Proxy retries, with its own
		// deadlines and breaker; minio-go's own retries (10 by default,
		// with backoff) would hide failures from it and outlast its
		// deadline. minio-go still sleeps (up to 200 ms) after a failed
		// attempt before it gives up; the context bounds that.
		MaxRetries: 1,
	}
	client, err := minio.New(ep.host, mo)
	if err != nil {
		return nil, fmt.Errorf("s3up: bad endpoint %q: %w", epStr, err)
	}

	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	partSize := o.PartSize
	if partSize == 0 {
		partSize = defaultPartSize
	}
	u := &Upstream{
		client:   client,
		core:     minio.Core{Client: client},
		tr:       tr,
		bucket:   t.bucket,
		prefix:   t.prefix,
		partSize: uint64(partSize),
		log:      log,
		now:      nowMillis,
	}
	log.Info("s3 upstream", "bucket", t.bucket, "prefix", t.prefix, "endpoint", client.EndpointURL().String(),
		"endpoint_from", endpointSrc, "region", region, "path_style", lookup == minio.BucketLookupPath,
		"credentials", credSrc)
	return u, nil
}

// Name is "s3".
func (u *Upstream) Name() string { return "s3" }

// Bucket is the bucket's name, for INFO and logs.
func (u *Upstream) Bucket() string { return u.bucket }

// Prefix is the object name prefix: "" or a path ending in '/'.
func (u *Upstream) Prefix() string { return u.prefix }

// Ping checks that the bucket exists and can be reached with the
// credentials (which needs the s3:ListBucket permission).
func (u *Upstream) Ping(ctx context.Context) error {
	ok, err := u.client.BucketExists(ctx, u.bucket)
	if err != nil {
		return opError("reach bucket", u.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3up: bucket %q does not exist: %w", u.bucket, tiers.ErrRefused)
	}
	return nil
}

// Close releases idle connections. Calls in flight finish.
func (u *Upstream) Close() error {
	u.tr.CloseIdleConnections()
	return nil
}
