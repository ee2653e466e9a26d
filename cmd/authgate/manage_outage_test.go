package main

import (
	"testing"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestManageAPIIs503WhenRedisIsDown: with the store gone the Manage API
// refuses with 503 in its envelope (1503), and serves again once Redis is
// back, without a restart of the gateway.
func TestManageAPIIs503WhenRedisIsDown(t *testing.T) {
	redis := storetest.StartRedis(t)
	g := startGateway(t, manageConfig("redis redis://"+redis.Addr()+"/0", manageUsersFile(t)))
	validate := g.URL + "/manage/v2/user/bob/validate/password"
	body := `{"password":"` + demoPassword + `"}`
	if r := request(t, "POST", validate, body, "Authorization", basicAuth("crm")); r.Status != 200 {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}
	redis.Stop()
	for _, c := range []struct{ path, body string }{
		{"/manage/v2/user/bob/validate/password", body},
		{"/manage/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001","otp":"123456"}`},
		{"/manage/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+35699000001"}`},
	} {
		r := request(t, "POST", g.URL+c.path, c.body, "Authorization", basicAuth("crm"))
		if r.Status != 503 || manageError(t, r) != 1503 || r.JSON["apiRequestId"] == nil {
			t.Errorf("%s with Redis down: %d %s", c.path, r.Status, r.Body)
		}
	}
	redis.Start()
	if r := request(t, "POST", validate, body, "Authorization", basicAuth("crm")); r.Status != 200 {
		t.Fatalf("after Redis came back: %d %s", r.Status, r.Body)
	}
}
