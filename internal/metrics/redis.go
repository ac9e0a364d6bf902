package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the Redis connection's metrics, a public interface too.
const (
	nameRedisConnected  = "herald_redis_connected"
	nameRedisReconnects = "herald_redis_reconnects_total"
)

// RedisState reports a Redis broker's connection, read at each scrape;
// it must be safe to call from any goroutine.
type RedisState func() (connected bool, reconnects uint64)

// WatchRedis exports the connection of a cluster node to Redis:
// herald_redis_connected (1 while connected, else 0) and
// herald_redis_reconnects_total (connections made again after one was
// lost). A node without Redis does not call it, and has neither series.
// It may be called once.
func (m *Metrics) WatchRedis(state RedisState) error {
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: nameRedisConnected,
		Help: "1 while this node is connected to Redis, 0 while it is not.",
	}, func() float64 {
		if ok, _ := state(); ok {
			return 1
		}
		return 0
	})
	reconnects := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: nameRedisReconnects,
		Help: "Times this node connected to Redis again after losing its connection.",
	}, func() float64 {
		_, n := state()
		return float64(n)
	})
	return errors.Join(m.reg.Register(connected), m.reg.Register(reconnects))
}
