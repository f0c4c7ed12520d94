"""Exact median condition numbers of B_S (batched SVD, PyTorch) at blocks 2-5 of MobileNetV2 1.0,
seed-0 weights from `infoloss init --seed 0 --out /tmp/l2/w6.safetensors`, inputs /tmp/l2/x.npy (16
Gaussian images, numpy default_rng(0)): the reference for lemma2.csv's median_condition. Not run in CI."""
import numpy as np, torch, torchvision
from safetensors.torch import load_file
t=6
setting = [[1, 16, 1, 1], [t, 24, 2, 2], [t, 32, 3, 2], [t, 64, 4, 2], [t, 96, 3, 1], [t, 160, 3, 2], [t, 320, 1, 1]]
m = torchvision.models.mobilenet_v2(inverted_residual_setting=setting).eval()
m.load_state_dict(load_file('/tmp/l2/w6.safetensors'))
xs = np.load('/tmp/l2/x.npy')
caps={}
for i in range(2,6):
    m.features[i].conv[0][1].register_forward_hook(lambda mod,inp,out,i=i: caps.__setitem__(i,out))
with torch.inference_mode():
    m(torch.from_numpy(xs))
    for i in range(2,6):
        conv, bn = m.features[i].conv[0][0], m.features[i].conv[0][1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        B = (conv.weight[:, :, 0, 0] * scale[:, None]).double()
        y = caps[i].permute(0, 2, 3, 1).reshape(-1, B.shape[0])
        active = ((y > 0) & (y < 6)).double()
        conds=[]
        for s in range(0, y.shape[0], 4096):
            a=active[s:s+4096]
            sv=torch.linalg.svdvals(a[:,:,None]*B[None])
            k=a.sum(1)
            c=(sv[:,0]/sv[:,-1])[k>=B.shape[1]]
            conds.append(c)
        c=torch.cat(conds).float().log10()
        v,_=c.sort(); print(i, 10**v[len(v)//2].item())
