"""Held-out evaluation set for `igs search`: 22 generated talks, 36 queries, expected passage each.

Each talk is a topic's own sentences interleaved with filler that every talk shares (the way
real talks pad their ideas), so a query must find the right moment, not just the right talk.
Queries were written after the talks, without tuning the ranking to them: half reuse a
distinctive word (full-text should win), half paraphrase with other words (semantic should).
"""

TOPICS = {
    "volcano": ("Volcanoes and the planet", [
        "Magma rises through cracks in the crust until the pressure blows the top off the mountain.",
        "Ash from the 1815 eruption of Tambora cooled the whole northern hemisphere for a year.",
        "Geologists listen to small earthquakes under the summit to forecast an eruption.",
        "Lava that is rich in silica is sticky and traps gas, which makes explosions worse.",
    ]),
    "bread": ("Baking sourdough at home", [
        "A sourdough starter is just flour and water colonised by wild yeast and lactic bacteria.",
        "Stretch and fold the dough every half hour instead of kneading it.",
        "A long cold proof in the fridge overnight gives the crumb its sour taste.",
        "Bake it in a preheated cast iron pot with the lid on so the steam stays in.",
    ]),
    "sleep": ("Why we sleep", [
        "Deep sleep is when the brain clears out waste through the glymphatic system.",
        "Caffeine blocks adenosine receptors, so you do not feel the pressure to sleep build up.",
        "Teenagers have a circadian rhythm that runs about two hours later than adults.",
        "Pulling an all-nighter cuts your ability to form new memories by about forty percent.",
    ]),
    "chess": ("Learning chess openings", [
        "Control the centre squares early with your pawns and knights.",
        "Castle before move ten to get your king out of danger.",
        "The Sicilian Defence answers e4 with c5 and fights for the centre from the side.",
        "Do not move the same piece twice in the opening unless you must.",
    ]),
    "bees": ("The secret life of bees", [
        "A forager bee tells the hive where the flowers are with a waggle dance.",
        "The angle of the dance relative to vertical shows the direction of the sun.",
        "Colony collapse has been linked to mites, pesticides and poor nutrition.",
        "A queen can lay up to two thousand eggs in a single day in summer.",
    ]),
    "mars": ("Landing on Mars", [
        "The thin Martian atmosphere is too weak for parachutes alone to slow a lander.",
        "Seven minutes of terror is the entry, descent and landing sequence with no help from Earth.",
        "The sky crane lowered the rover on cables and then flew away to crash.",
        "Radio signals take up to twenty minutes to travel between Mars and Earth.",
    ]),
    "jazz": ("A short history of jazz", [
        "Jazz grew out of blues and ragtime in New Orleans at the start of the twentieth century.",
        "Improvisation means the soloist invents a new melody over the chord changes every night.",
        "Bebop in the forties made the tempos faster and the harmonies far more complex.",
        "Miles Davis recorded Kind of Blue in just two sessions in 1959.",
    ]),
    "compost": ("Composting for beginners", [
        "Mix green kitchen scraps with brown leaves and cardboard in roughly equal parts.",
        "Turn the pile every week so oxygen reaches the microbes doing the work.",
        "A hot compost heap can reach sixty degrees and kill most weed seeds.",
        "Never add meat or dairy because they attract rats and smell terrible.",
    ]),
    "rust": ("Why systems programmers like Rust", [
        "The borrow checker proves at compile time that no two threads mutate the same data.",
        "Ownership means every value has exactly one owner that frees it when it goes out of scope.",
        "Cargo builds the project, fetches crates and runs the tests with one tool.",
        "Unsafe blocks let you opt out of the checks when talking to hardware or C code.",
    ]),
    "whales": ("Songs of the humpback whale", [
        "Male humpbacks sing long complex songs that can last for twenty minutes.",
        "A new song spreads from one population to the next across the Pacific within two years.",
        "Low frequency calls travel hundreds of kilometres through the deep sound channel.",
        "Ship noise drowns out the calls and forces whales to sing louder.",
    ]),
    "marathon": ("Training for your first marathon", [
        "Most of your weekly running should be slow enough that you can hold a conversation.",
        "Increase your long run by no more than ten percent a week to avoid injury.",
        "Taper for two to three weeks before race day so your legs are fresh.",
        "Take on carbohydrate gels every forty minutes during the race to avoid hitting the wall.",
    ]),
    "inflation": ("What causes inflation", [
        "Inflation is a general rise in prices that erodes what a unit of money can buy.",
        "Central banks raise interest rates to cool spending and bring inflation down.",
        "When too much money chases too few goods, sellers put their prices up.",
        "Wages that rise with prices can lock in a spiral that is hard to stop.",
    ]),
    "photography": ("Taking better photos with your phone", [
        "Use the rule of thirds and put the subject off centre.",
        "Shoot in the golden hour just after sunrise or before sunset for soft warm light.",
        "Tap on the face to set focus and exposure before you take the picture.",
        "Clean the lens with your shirt because fingerprints make every photo look hazy.",
    ]),
    "antibiotics": ("The threat of antibiotic resistance", [
        "Bacteria that survive a course of antibiotics pass their resistance on to their offspring.",
        "Stopping the pills early leaves the toughest bacteria alive.",
        "Farm animals receive most of the antibiotics sold in many countries.",
        "Penicillin was discovered by accident when mould killed bacteria in a dish.",
    ]),
    "roman": ("How the Romans built roads", [
        "Roman roads were layered with sand, gravel and large flat paving stones.",
        "The roads ran in straight lines because surveyors used a groma to sight them.",
        "Milestones along the road told travellers the distance back to Rome.",
        "Legions built most roads so that armies could march quickly to the frontier.",
    ]),
    "solar": ("Solar panels explained", [
        "Photovoltaic cells turn sunlight into electricity when photons knock electrons loose in silicon.",
        "An inverter converts the direct current from the panels into alternating current for the house.",
        "Panels facing south at the angle of your latitude catch the most light over a year.",
        "Batteries store the midday surplus so you can run the lights after dark.",
    ]),
    "octopus": ("The intelligence of octopuses", [
        "Two thirds of an octopus's neurons are in its arms, not its brain.",
        "Octopuses change colour and texture in a fraction of a second to hide.",
        "In aquariums they have escaped their tanks at night to steal fish next door.",
        "Most octopuses live only a year or two and die soon after breeding.",
    ]),
    "negotiation": ("How to negotiate a raise", [
        "Research what others in your role earn before you walk into the meeting.",
        "Let the other side name a number first when you can.",
        "Talk about the value you bring to the team, not about your rent.",
        "If the budget is fixed, ask for more holidays or training instead.",
    ]),
    "climate": ("Sea level rise", [
        "Meltwater from Greenland and Antarctica adds to the oceans every year.",
        "Warm water expands, which alone accounts for about a third of sea level rise.",
        "Coastal cities are building sea walls and raising streets to keep the tide out.",
        "Mangroves and salt marshes absorb storm surges better than concrete does.",
    ]),
    "coffee": ("The science of brewing coffee", [
        "Water just off the boil, around ninety three degrees, extracts coffee best.",
        "Grind finer for espresso and coarser for a French press.",
        "Under extracted coffee tastes sour and over extracted coffee tastes bitter.",
        "Beans lose most of their aroma within two weeks of roasting.",
    ]),
    "typography": ("Choosing fonts", [
        "Serif fonts have small feet on the letters that guide the eye along a printed line.",
        "Keep body text between sixty and seventy five characters per line.",
        "Never use more than two typefaces in one design.",
        "Kerning adjusts the space between individual pairs of letters.",
    ]),
    "glaciers": ("How glaciers carve valleys", [
        "A glacier is snow compressed over centuries into a river of ice that flows downhill.",
        "Rocks frozen into the base scrape the bedrock like sandpaper.",
        "Glaciers leave U shaped valleys while rivers cut V shaped ones.",
        "Boulders dropped far from their origin are called erratics.",
    ]),
}

FILLER = [
    "Thanks everyone for coming along today.",
    "I want to start with a little bit of background.",
    "This is something I have been thinking about for a long time.",
    "Let me give you an example that makes this concrete.",
    "There is a lot more to say about this than we have time for.",
    "I get asked about this a lot after these talks.",
    "So keep that in mind as we go through the next part.",
    "It turns out the answer is more interesting than you might expect.",
    "Let us move on to the next idea.",
    "I will put the references up at the end.",
    "That is the part most people get wrong.",
    "Now here is where it gets really interesting.",
]

# (query, topic, index of the expected sentence in that topic)
QUERIES = [
    ("Tambora eruption cooled the hemisphere", "volcano", 1),
    ("how do scientists predict when a volcano will erupt", "volcano", 2),
    ("why are some eruptions more explosive", "volcano", 3),
    ("stretch and fold dough", "bread", 1),
    ("how to get steam in the oven when baking bread", "bread", 3),
    ("caffeine adenosine", "sleep", 1),
    ("staying up all night hurts memory", "sleep", 3),
    ("why do teenagers go to bed late", "sleep", 2),
    ("Sicilian Defence", "chess", 2),
    ("keep the king safe early in the game", "chess", 1),
    ("waggle dance", "bees", 0),
    ("how many eggs does a queen lay", "bees", 3),
    ("sky crane rover", "mars", 2),
    ("communication delay between planets", "mars", 3),
    ("Kind of Blue", "jazz", 3),
    ("musicians making up melodies on the spot", "jazz", 1),
    ("can I put meat in my compost", "compost", 3),
    ("kill weed seeds with heat", "compost", 2),
    ("borrow checker threads", "rust", 0),
    ("package manager that builds and tests", "rust", 2),
    ("humpback song spreads across the Pacific", "whales", 1),
    ("boats are too loud for the animals", "whales", 3),
    ("how fast should easy runs be", "marathon", 0),
    ("energy gels during the race", "marathon", 3),
    ("central banks raise interest rates", "inflation", 1),
    ("salaries chasing prices in a loop", "inflation", 3),
    ("golden hour light", "photography", 1),
    ("my pictures look blurry and foggy", "photography", 3),
    ("finishing the full course of pills", "antibiotics", 1),
    ("how was penicillin found", "antibiotics", 3),
    ("groma surveyors straight roads", "roman", 1),
    ("what does an inverter do", "solar", 1),
    ("storing electricity for the night", "solar", 3),
    ("neurons in the arms", "octopus", 0),
    ("how do I ask my boss for more money", "negotiation", 0),
    ("thermal expansion of seawater", "climate", 1),
    ("why does my coffee taste sour", "coffee", 2),
    ("U shaped valleys", "glaciers", 2),
]
