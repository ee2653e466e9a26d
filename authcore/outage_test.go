package authcore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A store outage under load is a handful of log lines, not one a request:
// one when it starts, one every OutageLogEvery with the count refused
// since the last, one when it ends with the total.
func TestOutageLogsStartEveryTenSecondsAndEnd(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	o := NewOutage(zap.New(core), func() time.Time { return now })
	cause := fmt.Errorf("%w: dial tcp 127.0.0.1:6379: connection refused", ErrUnavailable)

	o.Answered() // no outage: nothing to say
	if logs.Len() != 0 || o.Down() {
		t.Fatalf("answers with no outage logged %d lines, down %v", logs.Len(), o.Down())
	}
	// 25 s of outage at 100 refused requests a second, each after a failed
	// store operation.
	for range 2500 {
		o.Failed(cause)
		o.Refused()
		now = now.Add(10 * time.Millisecond)
	}
	o.Answered()
	o.Answered()
	o.Refused() // after the end: not an outage's

	got := logs.AllUntimed()
	if len(got) != 4 {
		for _, e := range got {
			t.Log(e.Message, e.ContextMap())
		}
		t.Fatalf("a 25 s outage logged %d lines, want 4 (start, at 10 s, at 20 s, end)", len(got))
	}
	if got[0].Message != "session store unavailable: requests that need it are answered 503 until it answers again" ||
		got[0].Level != zap.WarnLevel || got[0].ContextMap()["cause"] != cause.Error() {
		t.Errorf("start line = %s %q %v", got[0].Level, got[0].Message, got[0].ContextMap())
	}
	for i, at := range []time.Duration{10 * time.Second, 20 * time.Second} {
		e := got[1+i]
		m := e.ContextMap()
		if e.Message != "session store still unavailable" || m["for"] != at || m["refused"] != int64(1000) {
			t.Errorf("line %d = %q %v, want still unavailable for %v with 1000 refused", 1+i, e.Message, m, at)
		}
	}
	end := got[3]
	if m := end.ContextMap(); end.Message != "session store available again" || end.Level != zap.InfoLevel ||
		m["refused"] != int64(2500) || m["lasted"] != 25*time.Second {
		t.Errorf("end line = %s %q %v, want available again after 25s with 2500 refused", end.Level, end.Message, m)
	}
	if o.Down() {
		t.Error("still down after an answer")
	}

	// The next outage starts afresh.
	o.Failed(errors.New("store unavailable: again"))
	if logs.Len() != 5 || !o.Down() {
		t.Errorf("a second outage logged %d lines in all, want 5", logs.Len())
	}
}
