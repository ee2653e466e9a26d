package caddymodule

import (
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/authcore"
)

// promMetrics are authgate's collectors. They are made once per process
// and registered into each config's registry, so counts carry across
// `caddy reload` and a second registration is not an error.
type promMetrics struct {
	logins *prometheus.CounterVec
	stepup *prometheus.CounterVec
	guard  *prometheus.CounterVec
	store  *prometheus.HistogramVec
	manage *prometheus.CounterVec

	// The children the hot path uses (a guard decision and its store
	// read on every guarded request), by label value: created on first
	// use as WithLabelValues would, then found without hashing the labels
	// and locking the vector each time.
	guardBy sync.Map // result -> prometheus.Counter
	storeBy sync.Map // op -> prometheus.Observer
}

var metrics = sync.OnceValue(func() *promMetrics {
	const ns = "authgate"
	return &promMetrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "logins_total", Help: "Login attempts by API (multi, manage, portal) and result.",
		}, []string{"api", "result"}),
		stepup: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "stepup_total", Help: "Step-up attempts by method and result.",
		}, []string{"method", "result"}),
		guard: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "guard_decisions_total", Help: "Guard decisions by result.",
		}, []string{"result"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "store_duration_seconds", Help: "Duration of store operations.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5, 1},
		}, []string{"op"}),
		manage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "manage_requests_total", Help: "Manage API requests by route and result.",
		}, []string{"route", "result"}),
	}
})

// registerMetrics registers the collectors in the config's registry and
// returns them as the core's Metrics.
func registerMetrics(ctx caddy.Context) (authcore.Metrics, error) {
	m := metrics()
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return m, nil
	}
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return nil, err
		}
	}
	return m, nil
}

// collectors lists every collector: what registerMetrics registers, and
// what the dashboard and alert rules may use (docs_test.go).
func (m *promMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logins, m.stepup, m.guard, m.store, m.manage}
}

func (m *promMetrics) Login(api, result string)     { m.logins.WithLabelValues(api, result).Inc() }
func (m *promMetrics) StepUp(method, result string) { m.stepup.WithLabelValues(method, result).Inc() }
func (m *promMetrics) GuardDecision(result string) {
	c, ok := m.guardBy.Load(result)
	if !ok {
		c, _ = m.guardBy.LoadOrStore(result, m.guard.WithLabelValues(result))
	}
	c.(prometheus.Counter).Inc()
}

func (m *promMetrics) StoreDuration(op string, d time.Duration) {
	o, ok := m.storeBy.Load(op)
	if !ok {
		o, _ = m.storeBy.LoadOrStore(op, m.store.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *promMetrics) ManageRequest(route, result string) {
	m.manage.WithLabelValues(route, result).Inc()
}

var _ authcore.Metrics = (*promMetrics)(nil)
