"""Ask the guided student a few questions and show who wrote what."""
from edge_collab import CollabPair, GenerationSettings, Source

QUESTIONS = ["What is 17 * 23?", "Name the largest planet in the solar system."]

settings = GenerationSettings(probe_rate=0.25, segment_tokens=16, max_new_tokens=200)
with CollabPair.open(settings=settings) as pair:        # the installed default pair
    for question in QUESTIONS:
        print(f"Q: {question}\nA: ", end="")
        generation = pair.generate(question, stream=True)
        for piece in generation:                          # pieces stream as they are final
            marker = "*" if piece.source is Source.MENTOR else ""
            print(f"{marker}{piece.text}{marker}", end="", flush=True)
        stats = generation.result.stats
        print(f"\n[mentor wrote {stats.mentor_share:.0%}, {stats.tokens_per_s:.1f} tokens/s]\n")

    result = pair.chat([{"role": "user", "content": "Say hi."}], max_new_tokens=20)
    print(result.text, result.stats.probes)
