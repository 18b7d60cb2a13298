package s3up

import (
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// anonymousFor is how long finding no credentials anywhere (anonymous
// requests, e.g. a public bucket or a local test server) is believed before
// the chain is walked again. minio-go's Chain says it is expired whenever it
// found nothing, so without this every request would walk it again, and its
// last link asks the instance metadata service, a request that waits up to a
// second off a cloud machine. A minute bounds both that cost and how long
// newly provided credentials (a file written, a role attached) go unseen.
const anonymousFor = time.Minute

// chainProvider finds credentials the way AWS tools and MinIO's do: the
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN variables,
// MinIO's MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or MINIO_ACCESS_KEY /
// MINIO_SECRET_KEY), the AWS shared credentials and config files
// (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE), then IAM (EC2
// instance roles, ECS task roles, web identity). The first link that has
// keys wins and is kept until its keys expire.
type chainProvider struct {
	chain credentials.Chain

	mu        sync.Mutex
	anonymous bool
	until     time.Time
}

var _ credentials.Provider = (*chainProvider)(nil)

func newChainCredentials() *credentials.Credentials {
	return credentials.New(&chainProvider{chain: credentials.Chain{Providers: []credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	}}})
}

func (p *chainProvider) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := p.chain.RetrieveWithCredContext(cc)
	p.noted(v, err)
	return v, err
}

func (p *chainProvider) Retrieve() (credentials.Value, error) {
	v, err := p.chain.Retrieve()
	p.noted(v, err)
	return v, err
}

func (p *chainProvider) noted(v credentials.Value, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.anonymous = err == nil && v.SignerType.IsAnonymous()
	if p.anonymous {
		p.until = time.Now().Add(anonymousFor)
	}
}

func (p *chainProvider) IsExpired() bool {
	p.mu.Lock()
	anonymous, until := p.anonymous, p.until
	p.mu.Unlock()
	if anonymous {
		return !time.Now().Before(until)
	}
	return p.chain.IsExpired()
}
