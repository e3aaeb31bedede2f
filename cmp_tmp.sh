cc -O2 -o /tmp/ollm examples/ollm.c -lm -lpthread -ldl
for d in tests/fixtures/gptoss_*; do
python3 - "$d" <<'PY'
import sys, subprocess, torch
from safetensors.torch import load_file
d=sys.argv[1]; ref=load_file(d+"/reference.safetensors")
ids=ref["ids"].tolist()
for extra in [["--chunk","1"],["--chunk","8"],[]]:
    subprocess.run(["/tmp/ollm","logits",d,"--ids",",".join(map(str,ids)),"--out","/tmp/l.safetensors","--backend","cuda"]+extra,check=True,capture_output=True)
    out=load_file("/tmp/l.safetensors"); k=list(out.keys())[0]; lg=out[k].float()
    err=(lg-ref["logits"].float()).abs().amax(-1)
    print(d.split('/')[-1],extra,"max %.3g median %.3g"%(err.max(),err.median()),"worst positions",err.topk(5).indices.tolist(), ["%.2g"%v for v in err.topk(5).values.tolist()])
PY
done
