//go:build !redisbroker

package server

import (
	"errors"
	"log/slog"

	"github.com/heraldhq/herald/internal/config"
)

// newRedisBroker is a placeholder until the Redis broker is merged.
func newRedisBroker(config.Redis, *slog.Logger) (*clusterBroker, error) {
	return nil, errors.New("redis.url is set but this build of Herald has no Redis broker")
}
