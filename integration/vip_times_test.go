package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVIPFailoverTimes measures the client-visible outage (largest gap
// between ping replies, 10 ms probes) for a crashed master (link cut + kill
// -9), a graceful stop and preempt-back, for a dnslb pair and a keepalived
// pair at the same advert interval. It reports figures (t.Log) and fails
// only when a failover does not happen. One run of each by default;
// DNSLB_VIP_MEASURE=<runs> (e.g. 5) for medians.
func TestVIPFailoverTimes(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("DNSLB_VIP_MEASURE"))
	if runs <= 0 {
		runs = 1
	}
	var report []string
	for _, impl := range []string{"dnslb", "keepalived"} {
		for _, adv := range []time.Duration{time.Second, 100 * time.Millisecond} {
			l := newLab(t)
			start := func(host string, prio int) *labProc {
				if impl == "keepalived" {
					return l.startKeepalived(host, prio, strconv.FormatFloat(adv.Seconds(), 'f', -1, 64))
				}
				return l.startVIP(host, prio, "    advert_interval: "+adv.String())
			}
			start("lb2", 100)
			lb1 := start("lb1", 150)
			l.waitHolders(t, 30*time.Second, "lb1")
			ping := l.ping(t)
			res := map[string][]time.Duration{}
			phase := func() { time.Sleep(time.Duration(rand.Int64N(int64(adv)))) } // random phase vs the advert timer
			for range runs {
				ping.waitTTL(t, 30*time.Second, labTTL1, time.Now())
				phase()
				ev := time.Now()
				l.setPort("lb1", false)
				lb1.kill(syscall.SIGKILL)
				<-lb1.done
				ping.waitTTL(t, 30*time.Second, labTTL2, ev)
				gap, _ := ping.outage(ev, labTTL2)
				res["crash"] = append(res["crash"], gap)
				l.setPort("lb1", true)

				ev = time.Now()
				lb1 = start("lb1", 150)
				ping.waitTTL(t, 30*time.Second, labTTL1, ev)
				gap, _ = ping.outage(ev, labTTL1)
				res["preempt"] = append(res["preempt"], gap)
				l.waitHolders(t, 30*time.Second, "lb1")

				time.Sleep(adv + 300*time.Millisecond) // let the backup settle (measurement only)
				phase()
				ev = time.Now()
				lb1.kill(syscall.SIGTERM)
				<-lb1.done
				ping.waitTTL(t, 30*time.Second, labTTL2, ev)
				gap, _ = ping.outage(ev, labTTL2)
				res["term"] = append(res["term"], gap)
				lb1 = start("lb1", 150)
				l.waitHolders(t, 30*time.Second, "lb1")
			}
			for _, sc := range []string{"crash", "term", "preempt"} {
				d := res[sc]
				slices.Sort(d)
				line := fmt.Sprintf("%-10s adv=%-5v %-7s outage min/median/max = %v / %v / %v (runs %d)",
					impl, adv, sc, d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
				t.Log(line)
				report = append(report, line)
			}
		}
	}
	t.Log("\n" + strings.Join(report, "\n"))
}
