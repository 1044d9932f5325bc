"""The adversarial economy: seeded actors driving the real state machine, to show who wins when people cheat.

`economy.run` builds a `world.World` (its cast of honest and dishonest actors, a genesis, an in-memory
chain), steps it block by block through `Runtime.build_block`, and `books` reads back what every class of
actor ended up with. `ailedger sim economy` (cli/sim.py) prints the table, writes the plots and the JSON
line; docs/economy.md has the figures and the attacks that still pay. Attribution is a stated stand-in
(`attributor`), since the SmolLM2 engine would take hours for 1,000 blocks of answers.
"""
