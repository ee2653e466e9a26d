package authcore_test

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// A client that goes away mid-request is refused (never admitted) but is
// not counted or logged as a store outage.
func TestClientGoneIsNotAnOutage(t *testing.T) {
	srv := storetest.StartRedis(t)
	opts, _ := redisstore.ParseURL("redis://" + srv.Addr() + "/0")
	store := redisstore.New(goredis.NewUniversalClient(opts), "cg:")
	defer store.Close()
	m := &recordingMetrics{}
	gw, tok := benchServicesT(t, store, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	adm, rej := admit(gw, ctx, "Bearer "+tok, &authcore.GuardPolicy{Token: "access"})
	if adm != nil || rej == nil || rej.Status != 503 || !authcore.ClientGone(rej.Cause) {
		t.Fatalf("cancelled request: admission %v, rejection %+v", adm, rej)
	}
	if m.counts["guard:client_gone"] != 1 || m.counts["guard:unavailable"] != 0 {
		t.Fatalf("metrics %v", m.counts)
	}
}
