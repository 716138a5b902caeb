"""Cases: what the bot cannot settle goes to the union's cadres as a numbered case; they answer
from WeCom (or the console) and the answer goes back to the worker."""
