// Jenkinsfile: run a build on the vk-serverless virtual node.
// nodeSelector + toleration are what steer the agent pod onto the virtual
// node (see jenkins-build-pod.yaml). The kubernetes plugin adds the jnlp
// container and the workspace-volume emptyDir itself.
podTemplate(yaml: '''
apiVersion: v1
kind: Pod
spec:
  nodeSelector:
    type: virtual-kubelet
  tolerations:
    - key: virtual-kubelet.io/provider
      operator: Exists
      effect: NoSchedule
  containers:
    - name: golang
      image: golang:1.24
      command: ["sleep"]
      args: ["infinity"]
      resources:
        requests:
          cpu: 500m
          memory: 512Mi
''') {
    node(POD_LABEL) {
        checkout scm
        container('golang') {
            sh 'go build ./...'
        }
    }
}
