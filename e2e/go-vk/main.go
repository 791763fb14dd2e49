// The reference Go virtual-kubelet (github.com/virtual-kubelet/virtual-kubelet, the version
// pinned in go.mod) for `e2e/bench pod-startup --against go-vk`: its nodeutil.Node with a mock
// provider that answers every create with a Running status at once, like the library's own mock
// (which sits in an internal package and cannot be imported). What this main sets, and why:
//   - client QPS/burst from -qps/-burst (the bench passes 1000/2000): client-go's default of 5
//     would make the client, not the kubelet, the figure;
//   - pod workers from -workers (default 10, the CLI's --pod-sync-workers default);
//   - the node's taint virtual-kubelet.io/provider=<-taint>:NoSchedule, as the CLI adds;
//   - no HTTP server (no TLS config): the bench needs no logs or exec.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig path")
	nodeName := flag.String("nodename", "go-vk", "node name")
	taint := flag.String("taint", "mock", "value of the virtual-kubelet.io/provider NoSchedule taint")
	qps := flag.Float64("qps", 1000, "client QPS")
	burst := flag.Int("burst", 2000, "client burst")
	workers := flag.Int("workers", 10, "pod sync workers")
	flag.Parse()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	config.QPS = float32(*qps)
	config.Burst = *burst
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fail(err)
	}

	newProvider := func(cfg nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		cfg.Node.Spec.Taints = append(cfg.Node.Spec.Taints, v1.Taint{
			Key: "virtual-kubelet.io/provider", Value: *taint, Effect: v1.TaintEffectNoSchedule,
		})
		capacity := v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse("1000"),
			v1.ResourceMemory: resource.MustParse("4Ti"),
			v1.ResourcePods:   resource.MustParse("20000"),
		}
		cfg.Node.Status.Capacity = capacity
		cfg.Node.Status.Allocatable = capacity
		return &mockProvider{pods: map[string]*v1.Pod{}}, nil, nil
	}
	n, err := nodeutil.NewNode(*nodeName, newProvider,
		nodeutil.WithClient(client),
		func(cfg *nodeutil.NodeConfig) error {
			cfg.NumWorkers = *workers
			cfg.HTTPListenAddr = "127.0.0.1:0"
			return nil
		})
	if err != nil {
		fail(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	go func() { _ = n.Run(ctx) }()
	if err := n.WaitReady(ctx, time.Minute); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "go-vk: node %s ready (qps %v, burst %d, %d workers)\n", *nodeName, *qps, *burst, *workers)
	<-n.Done()
	if err := n.Err(); err != nil && ctx.Err() == nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "go-vk: %v\n", err)
	os.Exit(1)
}

// mockProvider keeps pods in memory; a create is Running at once and a delete Succeeded.
type mockProvider struct {
	mu       sync.Mutex
	pods     map[string]*v1.Pod
	notifier func(*v1.Pod)
}

func key(namespace, name string) string { return namespace + "/" + name }

func (p *mockProvider) NotifyPods(_ context.Context, notifier func(*v1.Pod)) {
	p.notifier = notifier
}

func (p *mockProvider) CreatePod(_ context.Context, pod *v1.Pod) error {
	now := metav1.NewTime(time.Now())
	pod.Status = v1.PodStatus{
		Phase:     v1.PodRunning,
		HostIP:    "1.2.3.4",
		PodIP:     "5.6.7.8",
		StartTime: &now,
		Conditions: []v1.PodCondition{
			{Type: v1.PodInitialized, Status: v1.ConditionTrue},
			{Type: v1.PodReady, Status: v1.ConditionTrue},
			{Type: v1.PodScheduled, Status: v1.ConditionTrue},
		},
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}},
		})
	}
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	p.mu.Unlock()
	p.notifier(pod)
	return nil
}

func (p *mockProvider) UpdatePod(_ context.Context, pod *v1.Pod) error {
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	p.mu.Unlock()
	p.notifier(pod)
	return nil
}

func (p *mockProvider) DeletePod(_ context.Context, pod *v1.Pod) error {
	p.mu.Lock()
	_, ok := p.pods[key(pod.Namespace, pod.Name)]
	delete(p.pods, key(pod.Namespace, pod.Name))
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFound("pod not found")
	}
	now := metav1.Now()
	pod.Status.Phase = v1.PodSucceeded
	pod.Status.Reason = "MockProviderPodDeleted"
	for i := range pod.Status.ContainerStatuses {
		pod.Status.ContainerStatuses[i].Ready = false
		pod.Status.ContainerStatuses[i].State = v1.ContainerState{
			Terminated: &v1.ContainerStateTerminated{Reason: "MockProviderPodContainerDeleted", FinishedAt: now},
		}
	}
	p.notifier(pod)
	return nil
}

func (p *mockProvider) GetPod(_ context.Context, namespace, name string) (*v1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod, ok := p.pods[key(namespace, name)]; ok {
		return pod, nil
	}
	return nil, errdefs.NotFoundf("pod %s/%s is not known to the provider", namespace, name)
}

func (p *mockProvider) GetPodStatus(ctx context.Context, namespace, name string) (*v1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *mockProvider) GetPods(_ context.Context) ([]*v1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pods := make([]*v1.Pod, 0, len(p.pods))
	for _, pod := range p.pods {
		pods = append(pods, pod)
	}
	return pods, nil
}

func (p *mockProvider) GetContainerLogs(context.Context, string, string, string, api.ContainerLogOpts) (io.ReadCloser, error) {
	return nil, errdefs.InvalidInput("no logs in the bench's mock")
}

func (p *mockProvider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errdefs.InvalidInput("no exec in the bench's mock")
}

func (p *mockProvider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("no attach in the bench's mock")
}

func (p *mockProvider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("no port-forward in the bench's mock")
}

func (p *mockProvider) GetStatsSummary(context.Context) (*stats.Summary, error) {
	return &stats.Summary{}, nil
}

func (p *mockProvider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
