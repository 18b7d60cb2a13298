package redisup

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own messages (a failed reconnection, a Sentinel switching
// primaries, a cluster's slots reloaded) to l as warnings tagged component=go-redis,
// instead of go-redis's default, the standard log package's stderr. It is a process-wide
// setting of go-redis.
func SetLogger(l *slog.Logger) { redis.SetLogger(goRedisLog{l}) }

type goRedisLog struct{ l *slog.Logger }

func (g goRedisLog) Printf(ctx context.Context, format string, v ...any) {
	g.l.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
