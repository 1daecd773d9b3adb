"""Chinese research vocabulary mapped to English word prefixes.

Used by the extractive answerer (Chinese questions over English evidence) and by retrieval (Chinese
questions expand their BM25 query with the matching English words of the index vocabulary).
"""
from __future__ import annotations

import re

# Chinese research vocabulary -> English word prefixes, so Chinese questions can be answered from English-only
# sources (most digests have no Chinese text). Longest phrase wins; prefixes match at word starts.
_GLOSSARY_TEXT = """
推荐 recommend|推荐系统 recommend|搜索 search|检索 retriev|排序 rank|重排 rerank|召回 recall|召回率 recall
广告 advert|ads|点击率 ctr|click-through|转化率 conversion|cvr|用户 user|物品 item|商品 product|item
数据集 dataset|benchmark|data set|基准 benchmark|公开 public|open|实验 experiment|验证 validat|evaluat|verif
评估 evaluat|准确率 accuracy|精度 precision|accuracy|提升 improv|gain|boost|outperform|降低 reduc|lower|decreas
效率 efficien|计算成本 comput|成本 cost|延迟 latency|部署 deploy|线上 online|在线 online|离线 offline|工业 industr
大语言模型 llm|large language|大模型 llm|large model|语言模型 language model|多模态 multimodal|multi-modal
图像 image|visual|视觉 visual|vision|文本 text|视频 video|音乐 music|语义 semantic|量化 quantiz|向量 vector|embedding
嵌入 embed|表示 represent|表征 represent|预训练 pretrain|pre-train|微调 fine-tun|finetun|对齐 align
强化学习 reinforcement|偏好 preferen|奖励 reward|注意力 attention|序列 sequen|生成式 generat|生成 generat
判别 discriminat|可扩展 scal|扩展 scal|长序列 long sequen|long-sequen|冷启动 cold-start|cold start
负采样 negative sampl|采样 sampl|对比学习 contrastive|图神经网络 graph neural|gnn|知识图谱 knowledge graph
问答 question answer|qa|记忆 memory|智能体 agent|本地生活 local|生活 life|地理 geograph|spatial|geo
空间 spatial|位置 location|电商 e-commerce|ecommerce|电子商务 e-commerce|ecommerce|相关性 relevan|查询 query
点击 click|会话 session|群组 group|奇异值分解 svd|singular value|矩阵 matrix|分解 factoriz|decompos|聚类 cluster
分类 classif|联邦 federat|隐私 privacy|公平 fair|可解释 explain|interpret|推理 reason|inferen|思维链 chain-of-thought
幻觉 hallucinat|检索增强 retrieval-augmented|rag|提示 prompt|指令 instruct|教师 teacher|学生 student
知识蒸馏 distill|蒸馏 distill|压缩 compress|剪枝 prun|性能 perform|算法 algorithm|损失 loss|多目标 multi-objective
多任务 multi-task|混合专家 mixture-of-experts|moe|专家 expert|路由 rout|码本 codebook|残差 residual
神经辐射场 radiance|三维 3d|渲染 render|场景 scene|点云 point cloud|显存 vram|gpu memory|训练 train
开源 open-source|open source|代码 code|冷门 long-tail|长尾 long-tail|long tail|多样性 diversit|鲁棒 robust
泛化 generaliz|过拟合 overfit|稀疏 sparse|稠密 dense|稳定 stabl|收敛 converg|自监督 self-supervis
平均 average|mean|少样本 few-shot|零样本 zero-shot|迁移 transfer|跨域 cross-domain|领域 domain|元学习 meta-learn|知识 knowledge
"""


def _parse_glossary(text: str) -> dict[str, tuple[str, ...]]:
    """``zh en|en zh en ...`` lines -> {zh phrase: English prefixes}."""
    out: dict[str, tuple[str, ...]] = {}
    for m in re.finditer(r"([\u3400-\u9fff]+)\s+([^\u3400-\u9fff]+)", text):
        out[m.group(1)] = tuple(a.strip() for a in m.group(2).split("|") if a.strip())
    return out


GLOSSARY: dict[str, tuple[str, ...]] = _parse_glossary(_GLOSSARY_TEXT)


def english_prefixes(text: str) -> list[str]:
    """English prefixes of every glossary phrase in the text (a longer phrase hides its parts)."""
    found: list[str] = []
    taken: set[int] = set()
    for zh in sorted(GLOSSARY, key=len, reverse=True):
        for m in re.finditer(re.escape(zh), text):
            span = set(range(m.start(), m.end()))
            if not span & taken:
                taken |= span
                found.extend(p.lower() for p in GLOSSARY[zh])
    return list(dict.fromkeys(found))


def expand_prefixes(prefixes: list[str], prefixed, per_prefix: int = 6) -> list[str]:
    """Vocabulary words starting with each prefix (multi-word prefixes are left to the tokenizer);
    ``prefixed(prefix, limit)`` gives the first ``limit`` vocabulary words with a prefix, in sorted order."""
    out: list[str] = []
    for p in prefixes:
        out.extend([p] if " " in p else prefixed(p, per_prefix))
    return out


def bridge(question: str):
    """For the offline answerer with an English-only embedder: a function giving each Chinese bigram of the
    question the English prefixes of the glossary phrase it lies in (a longer phrase wins), else ()."""
    alts: dict[str, tuple[str, ...]] = {}
    taken: set[int] = set()
    for zh in sorted(GLOSSARY, key=len, reverse=True):
        for m in re.finditer(re.escape(zh), question):
            span = set(range(m.start(), m.end()))
            if span & taken:
                continue
            taken |= span
            for i in range(m.start(), m.end() - 1):
                alts.setdefault(question[i:i + 2], tuple(p.lower() for p in GLOSSARY[zh]))
    return lambda term: alts.get(term.key, ()) if term.kind == "cjk" else ()
