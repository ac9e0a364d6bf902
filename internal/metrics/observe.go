package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/hub"
)

var _ hub.Observer = (*Metrics)(nil)

// sources and refusals are the label values created up front; Source and
// Refusal values start at 1, so each is its own index.
var (
	sources  = []hub.Source{hub.SourceREST, hub.SourceClient}
	refusals = []hub.Refusal{hub.RefusedInvalid, hub.RefusedAuth, hub.RefusedLimit, hub.RefusedUnavailable}
)

// appSeries is one app's series, looked up once when the app is first seen
// so that observing an event is a map read and an atomic add.
type appSeries struct {
	connections   prometheus.Gauge
	opened        prometheus.Counter
	closed        []prometheus.Counter // by hub.CloseReason
	channels      prometheus.Gauge
	subscriptions prometheus.Gauge
	published     []prometheus.Counter // by hub.Source; nil for 0
	delivered     prometheus.Counter
	refused       []prometheus.Counter // by hub.Refusal; nil for 0
}

func (m *Metrics) newAppSeries(app string) *appSeries {
	s := &appSeries{
		connections:   m.connections.WithLabelValues(app),
		opened:        m.opened.WithLabelValues(app),
		channels:      m.channels.WithLabelValues(app),
		subscriptions: m.subscriptions.WithLabelValues(app),
		delivered:     m.delivered.WithLabelValues(app),
		published:     make([]prometheus.Counter, len(sources)+1),
		refused:       make([]prometheus.Counter, len(refusals)+1),
	}
	for _, r := range hub.CloseReasons() {
		s.closed = append(s.closed, m.disconnections.WithLabelValues(app, r.String()))
	}
	for _, src := range sources {
		s.published[src] = m.published.WithLabelValues(app, src.String())
	}
	for _, r := range refusals {
		s.refused[r] = m.refusedSubs.WithLabelValues(app, r.String())
	}
	return s
}

// app returns the series of app, creating them on first use.
func (m *Metrics) app(app string) *appSeries {
	if s, ok := m.apps.load(app); ok {
		return s
	}
	return m.apps.loadOrStore(app, func() *appSeries { return m.newAppSeries(app) })
}

// pick returns the counter of a closed-set value i, or, for a value
// outside the set (a newer hub than this package knows), the series of its
// String, which for an unknown value is "unknown".
func pick[T ~uint8](list []prometheus.Counter, i T, vec *prometheus.CounterVec, app string, name func(T) string) prometheus.Counter {
	if int(i) < len(list) && list[i] != nil {
		return list[i]
	}
	return vec.WithLabelValues(app, name(i))
}

// Observe implements hub.Observer. It never blocks, and allocates only the
// first time an app is seen.
func (m *Metrics) Observe(e hub.Event) {
	switch e.Type {
	case hub.EventConnectionRefused:
		// No app id: a refused connection's key may name no app.
		if int(e.Reason) < len(m.connRefusedByWhy) {
			m.connRefusedByWhy[e.Reason].Inc()
		} else {
			m.refusedConns.WithLabelValues(e.Reason.String()).Inc()
		}
		return
	case hub.EventConnectionOpened, hub.EventConnectionClosed, hub.EventChannelOccupied, hub.EventChannelVacated,
		hub.EventSubscriptionCount, hub.EventSubscriptionRefused, hub.EventPublished, hub.EventDelivered:
	default:
		// Presence, client-event and cache events carry nothing counted here;
		// returning before the lookup keeps them from creating series.
		return
	}
	s := m.app(e.AppID)
	switch e.Type {
	case hub.EventConnectionOpened:
		s.opened.Inc()
		s.connections.Inc()
	case hub.EventConnectionClosed:
		s.connections.Dec()
		pick(s.closed, e.Reason, m.disconnections, e.AppID, hub.CloseReason.String).Inc()
	case hub.EventChannelOccupied:
		s.channels.Inc()
	case hub.EventChannelVacated:
		s.channels.Dec()
	case hub.EventSubscriptionCount:
		s.subscriptions.Add(float64(e.Delta))
	case hub.EventSubscriptionRefused:
		pick(s.refused, e.Refusal, m.refusedSubs, e.AppID, hub.Refusal.String).Inc()
	case hub.EventPublished:
		pick(s.published, e.Source, m.published, e.AppID, hub.Source.String).Inc()
	case hub.EventDelivered:
		if e.Count > 0 {
			s.delivered.Add(float64(e.Count))
		}
	}
}
