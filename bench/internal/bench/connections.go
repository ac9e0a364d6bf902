package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// runConnections runs connect (a connection storm: how fast do N
// connections get established) and idle (what do N open connections cost
// the server, and do they stay up).
func runConnections(ctx context.Context, o *Options, res *Result) error {
	prefix := "hb-" + runID() + "-"
	res.Params.Subscribe = o.Subscribe
	idle := o.Scenario == ScenarioIdle
	if idle {
		res.Params.DurationSeconds = o.Duration.Seconds()
	}
	p, err := newPool(o, o.Conns)
	if err != nil {
		return err
	}
	spec := func(id int) dialSpec {
		s := dialSpec{sk: nopSink{}, node: p.nodeOf(id)}
		if o.Subscribe {
			s.setup = func(c *conn) error {
				return p.subscribe(c, []string{prefix + strconv.Itoa(id)}, "", false)
			}
		}
		return s
	}

	prog := startProgress(o)
	defer prog.close()
	w := newProcWatch(o.pids)
	w.startIdx = w.sample()
	w.measureFrom = w.startIdx
	dialStart := time.Now()
	prog.set(p.dialStatus(o.Conns, dialStart))
	conns := p.dialAll(ctx, 0, o.Conns, spec)
	res.Connections = p.connResult(o.Conns, conns, dialStart, time.Now())
	settle()
	w.connIdx = w.sample()
	w.measureTo = w.connIdx
	defer p.shutdown(conns)
	established := res.Connections.Established

	if idle {
		w.measureFrom = w.connIdx
		holdStart := time.Now()
		prog.set(func() string {
			return fmt.Sprintf("holding: %d open, %d closed by server, %.0fs left", established-int(p.closedCount()),
				p.closedCount(), max(0, time.Until(holdStart.Add(o.Duration)).Seconds()))
		})
		select {
		case <-ctx.Done():
		case <-time.After(o.Duration):
		}
		// Measured with every connection still open, after the hold: a
		// fairer picture of steady memory than right after the storm.
		w.connIdx = w.sample()
		w.measureTo = w.connIdx
		var pongs uint64
		for _, sh := range p.shards {
			pongs += sh.pongsSent.Load()
		}
		res.Idle = &IdleResult{HeldSeconds: time.Since(holdStart).Seconds(),
			Alive: established - int(p.closedCount()), PongsSent: pongs}
	}
	res.Connections.ClosedByServer = p.closedCount()
	res.Connections.PusherErrors = p.errorCount()
	res.Server, res.ServerNodes, res.Client, err = w.results(established, res.Connections.PerNode, float64(established), "connection")
	res.Errors = append(res.Errors, p.errorSamples()...)
	res.Complete = res.Connections.Failed == 0 && res.Connections.ClosedByServer == 0
	return err
}
