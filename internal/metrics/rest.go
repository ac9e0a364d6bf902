package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// endpoint is one value of the closed endpoint label.
type endpoint uint8

const (
	endpointOther endpoint = iota
	endpointEvents
	endpointBatchEvents
	endpointChannels
	endpointChannel
	endpointUsers
	endpointTerminate
	numEndpoints
)

// endpointNames are the REST API's endpoints as the endpoint label shows
// them; any other value is recorded as "other".
var endpointNames = [numEndpoints]string{
	endpointOther:       "other",
	endpointEvents:      "events",
	endpointBatchEvents: "batch_events",
	endpointChannels:    "channels",
	endpointChannel:     "channel",
	endpointUsers:       "users",
	endpointTerminate:   "terminate",
}

func endpointOf(name string) endpoint {
	for e, n := range endpointNames {
		if n == name {
			return endpoint(e)
		}
	}
	return endpointOther
}

type restKey struct {
	app      string
	endpoint endpoint
	status   int
}

// ObserveREST records one REST API request: herald_rest_requests_total and
// herald_rest_request_duration_seconds. appID must be the id of an app
// Herald knows, or "" (never the id a client put in the path of a request
// for an unknown app); endpoint one of events, batch_events, channels,
// channel, users, terminate or other (anything else counts as other);
// status the HTTP status written, which outside 100-599 is recorded as 0.
// It matches the signature of httpapi.Config.Observe.
func (m *Metrics) ObserveREST(appID, endpoint string, status int, d time.Duration) {
	e := endpointOf(endpoint)
	if status < 100 || status > 599 {
		status = 0
	}
	k := restKey{app: appID, endpoint: e, status: status}
	c, ok := m.restSeries.load(k)
	if !ok {
		c = m.restSeries.loadOrStore(k, func() prometheus.Counter {
			return m.restRequests.WithLabelValues(appID, endpointNames[e], strconv.Itoa(status))
		})
	}
	c.Inc()
	m.restTimes[e].Observe(d.Seconds())
}
