// Jenkinsfile: run a build on the vk-serverless virtual node.
// nodeSelector + toleration are what steer the agent pod onto the virtual
// node (jenkins-agent-pod.yaml shows the pod the plugin generates from it). The
// kubernetes plugin adds the jnlp container and the workspace-volume emptyDir
// itself. Build containers wait with `cat` on a terminal; each step runs in
// them through exec.
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
      command: ["cat"]
      tty: true
      resources:
        requests:
          cpu: 500m
          memory: 512Mi
    - name: kaniko
      image: gcr.io/kaniko-project/executor:debug
      command: ["/busybox/cat"]
      tty: true
''') {
    node(POD_LABEL) {
        checkout scm
        container('golang') {
            sh 'go build ./...'
        }
        container('kaniko') {
            sh '/kaniko/executor --context "$PWD" --no-push'
        }
    }
}
