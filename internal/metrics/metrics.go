// Package metrics exports a Herald node's Prometheus metrics: it observes the
// hub's event stream, times the REST API and the broker, and serves the
// result, with the Go runtime and process collectors, from a registry of its
// own (never the global one, so nothing imported can add series to it).
//
// The metric names and labels are a public interface: dashboards and alerts
// depend on them. Labels take app ids and small closed sets only (reasons,
// sources, endpoints, status codes, broker operations, observer names),
// never a channel, user, socket or event name, and never a value a client
// chose: an app id reaches a label only once Herald knows the app.
//
// Every series of an app whose label values are known up front (each close
// reason, source and refusal) is created, at zero, when the app's first
// event is observed, so that rate() and dashboards see zeros rather than
// gaps. REST series, whose status codes are not known up front, appear on
// their first request; herald_connections_refused_total has every reason
// from the start.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldhq/herald/internal/hub"
)

// Options configures the metrics. The zero value is usable.
type Options struct {
	// Version and Commit label herald_build_info; empty means "unknown".
	Version, Commit string
	// BytesWritten, if not nil, reports the bytes written to clients so
	// far; it is read at each scrape as herald_bytes_written_total, and must
	// be safe to call from any goroutine. When nil the series is absent.
	BytesWritten func() uint64
	// Log receives the errors of gathering and serving metrics; nil
	// discards them.
	Log *slog.Logger
}

// maxScrapesInFlight bounds concurrent scrapes; more are answered 503. A
// Prometheus server scrapes once per interval, so a handful is plenty, and
// the bound keeps a flood of scrapes from gathering the registry over and
// over.
const maxScrapesInFlight = 4

// Metrics holds a node's collectors. It is safe for concurrent use; its
// Observe method is an allocation-free hub.Observer once an app's series
// exist.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	connections      *prometheus.GaugeVec
	opened           *prometheus.CounterVec
	disconnections   *prometheus.CounterVec
	refusedConns     *prometheus.CounterVec
	channels         *prometheus.GaugeVec
	subscriptions    *prometheus.GaugeVec
	published        *prometheus.CounterVec
	delivered        *prometheus.CounterVec
	refusedSubs      *prometheus.CounterVec
	restRequests     *prometheus.CounterVec
	restDuration     *prometheus.HistogramVec
	brokerDuration   *prometheus.HistogramVec
	brokerErrors     *prometheus.CounterVec
	connRefusedByWhy []prometheus.Counter // by hub.CloseReason

	// apps holds each app's series, restSeries each REST counter; both are
	// filled on first use and read without a lock.
	apps       cache[string, *appSeries]
	restSeries cache[restKey, prometheus.Counter]
	restTimes  [numEndpoints]prometheus.Observer

	broker brokerSeries
}

// Metric names. They are a public interface: do not rename.
const (
	nameConnections      = "herald_connections"
	nameConnectionsTotal = "herald_connections_total"
	nameDisconnections   = "herald_disconnections_total"
	nameConnRefused      = "herald_connections_refused_total"
	nameChannels         = "herald_channels"
	nameSubscriptions    = "herald_subscriptions"
	namePublished        = "herald_messages_published_total"
	nameDelivered        = "herald_messages_delivered_total"
	nameBytesWritten     = "herald_bytes_written_total"
	nameSubsRefused      = "herald_subscriptions_refused_total"
	nameRESTRequests     = "herald_rest_requests_total"
	nameRESTDuration     = "herald_rest_request_duration_seconds"
	nameBrokerDuration   = "herald_broker_operation_seconds"
	nameBrokerErrors     = "herald_broker_errors_total"
	nameObserverDrops    = "herald_observer_drops_total"
	nameBuildInfo        = "herald_build_info"
)

// Buckets, in seconds. A REST request served from memory takes tens of
// microseconds and one that waits on a remote broker milliseconds; the
// buckets reach seconds so that a stalled dependency still shows.
var (
	restBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	brokerBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

// New returns the metrics of one node, with the Go runtime and process
// collectors and herald_build_info registered.
func New(o Options) *Metrics {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: o.Log}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(v)
		return v
	}
	m.connections = gauge(nameConnections, "Open client connections on this node.", "app_id")
	m.opened = counter(nameConnectionsTotal, "Client connections admitted.", "app_id")
	m.disconnections = counter(nameDisconnections, "Admitted client connections that ended, by close reason.", "app_id", "reason")
	m.refusedConns = counter(nameConnRefused, "Client connections refused at admission, by reason.", "reason")
	m.channels = gauge(nameChannels, "Channels with at least one subscriber on this node.", "app_id")
	m.subscriptions = gauge(nameSubscriptions, "Channel subscriptions of this node's connections.", "app_id")
	m.published = counter(namePublished, "Events published on this node, by source (rest or client).", "app_id", "source")
	m.delivered = counter(nameDelivered, "Events handed to this node's connections, one per connection.", "app_id")
	m.refusedSubs = counter(nameSubsRefused, "Subscriptions refused, by reason.", "app_id", "reason")
	m.restRequests = counter(nameRESTRequests, "REST API requests, by endpoint and HTTP status.", "app_id", "endpoint", "status")
	m.restDuration = histogram(nameRESTDuration, "REST API request handling time, by endpoint.", restBuckets, "endpoint")
	m.brokerDuration = histogram(nameBrokerDuration, "Broker operation time, by operation.", brokerBuckets, "op")
	m.brokerErrors = counter(nameBrokerErrors, "Broker operations that failed, by operation.", "op")

	for _, r := range hub.CloseReasons() {
		m.connRefusedByWhy = append(m.connRefusedByWhy, m.refusedConns.WithLabelValues(r.String()))
	}
	for e := range endpointNames {
		m.restTimes[e] = m.restDuration.WithLabelValues(endpointNames[e])
	}
	m.broker.init(m)

	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        nameBuildInfo,
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": orUnknown(o.Version), "commit": orUnknown(o.Commit)},
	})
	build.Set(1)
	m.reg.MustRegister(
		build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.BytesWritten != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: nameBytesWritten,
			Help: "Bytes written to client connections.",
		}, func() float64 { return float64(o.BytesWritten()) }))
	}
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Handler serves the registry in the format the scraper asks for (the
// Prometheus text format by default, protobuf when asked, gzip when
// accepted). A collector that fails is logged and left out; the rest is
// served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
	})
}

// errorLog adapts slog to promhttp's logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }

// ObserverDrops exports drops, read at each scrape, as
// herald_observer_drops_total{observer=name}: the events a buffered
// observer (hub.Buffered's Name and Drops) had to drop. name must be a
// fixed name chosen by the code, and unique.
func (m *Metrics) ObserverDrops(name string, drops func() uint64) error {
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        nameObserverDrops,
		Help:        "Events a buffered observer dropped because its queue was full.",
		ConstLabels: prometheus.Labels{"observer": name},
	}, func() float64 { return float64(drops()) })
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: observer %q: %w", name, err)
	}
	return nil
}

// cache is a map read without a lock: a reader loads the current map, a
// writer (under mu) copies it with one more entry and swaps it in. It suits
// keys that are few and found early (apps, REST endpoint and status pairs),
// read on every event.
type cache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

func (c *cache[K, V]) load(k K) (V, bool) {
	if p := c.m.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrStore returns the value of k, storing newV's result first if there
// is none; newV runs under the lock, at most once per key.
func (c *cache[K, V]) loadOrStore(k K, newV func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var next map[K]V
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		next = make(map[K]V, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	} else {
		next = make(map[K]V, 1)
	}
	v := newV()
	next[k] = v
	c.m.Store(&next)
	return v
}
