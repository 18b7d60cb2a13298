package resp

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the front end's Prometheus collectors, named
// kvresp_resp_<what>_<unit>.
type metrics struct {
	latency     *prometheus.HistogramVec
	connections prometheus.Gauge
	unknown     prometheus.Counter
	counters    []prometheus.CounterFunc
	byCmd       map[string]cmdMetrics
}

type cmdMetrics struct {
	latency prometheus.Observer
}

func newMetrics(st *serverStats) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvresp_resp_command_duration_seconds",
			Help:    "Time to run a command, from parsed request to gathered reply (socket time excluded), by command; its _count is the number of commands run.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, []string{"cmd"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvresp_resp_connections", Help: "Connected clients.",
		}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvresp_resp_unknown_commands_total", Help: "Requests naming a command kvresp does not have.",
		}),
		byCmd: map[string]cmdMetrics{},
	}
	counter := func(name, help string, v *atomic.Int64) {
		m.counters = append(m.counters, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("kvresp_resp_net_input_bytes_total", "Bytes read from clients.", &st.netIn)
	counter("kvresp_resp_net_output_bytes_total", "Bytes written to clients.", &st.netOut)
	counter("kvresp_resp_connections_total", "Connections accepted.", &st.connsTotal)
	counter("kvresp_resp_rejected_connections_total", "Connections refused at maxclients.", &st.rejected)
	counter("kvresp_resp_protocol_errors_total", "Connections closed for a protocol error.", &st.protoErrors)
	// Resolve every label once so the hot path does no map work in the
	// vectors.
	for name := range table {
		m.byCmd[name] = cmdMetrics{m.latency.WithLabelValues(name)}
	}
	return m
}

func (m *metrics) observe(cmd *command, d time.Duration) {
	m.byCmd[cmd.name].latency.Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.latency.Describe(ch)
	m.connections.Describe(ch)
	m.unknown.Describe(ch)
	for _, c := range m.counters {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.latency.Collect(ch)
	m.connections.Collect(ch)
	m.unknown.Collect(ch)
	for _, c := range m.counters {
		c.Collect(ch)
	}
}
